package stacks

import (
	"time"

	"github.com/prometheus/common/model"

	"github.com/maricusco/infra/components"
)

// Every number a stack sets has a range in which it means what its key says: outside it, a value
// turns a limit off (a dump every second, a log rotated at every line) or cannot be met.

// minBackupInterval keeps a dump of a large database from starting before the last one ends;
// maxBackupInterval keeps a base backup's WAL to a week.
const (
	minBackupInterval = 15 * time.Minute
	maxBackupInterval = 7 * 24 * time.Hour
	maxBackupKeep     = 365
)

// The WAL archive's age limit: several checks long at least, and short enough to mean something.
const (
	minWALMaxAge = 30 * time.Second
	maxWALMaxAge = 24 * time.Hour
)

// The slot's retention limit: four WAL segments at least, since less would alarm on ordinary
// checkpoints, and at most a terabyte, beyond which the database's disk is the limit anyway.
const (
	minWALRetained components.UnitBytes = 64 << 20
	maxWALRetained components.UnitBytes = 1 << 40
)

// The log rotation: a file rotated before it holds a few hundred lines, or thousands of files,
// defeat the rotation.
const (
	minLogSize components.UnitBytes = 100 << 10
	maxLogSize components.UnitBytes = 1 << 30
	maxLogFile                      = 100
)

// durationWithin fails key when d is outside [lo, hi], unless it did not parse (already reported).
func durationWithin(r *reader, key string, d, lo, hi time.Duration) {
	if r.has(key) {
		return
	}
	if d < lo || d > hi {
		r.fail(key, "%s is out of range; use %s to %s", d, lo, hi)
	}
}

func validateHealth(r *reader, h components.HealthTiming) {
	durationWithin(r, "healthcheckInterval", h.Interval, time.Second, time.Hour)
	durationWithin(r, "healthcheckTimeout", h.Timeout, time.Second, time.Hour)
	durationWithin(r, "healthcheckStartPeriod", h.StartPeriod, time.Second, time.Hour)
	// The engine's own floor (API: "0 or at least 1 ms"); below the provider's once-a-second wait
	// for health, a shorter interval only adds probes.
	durationWithin(r, "healthcheckStartInterval", h.StartInterval, time.Millisecond, time.Hour)
	durationWithin(r, "healthyTimeout", h.WaitTimeout, 10*time.Second, 2*time.Hour)
	if h.Timeout >= h.Interval && h.Interval > 0 {
		r.fail("healthcheckTimeout", "%s must be shorter than healthcheckInterval (%s)", h.Timeout, h.Interval)
	}
	if h.StartInterval > h.StartPeriod && h.StartPeriod > 0 {
		r.fail("healthcheckStartInterval", "%s must not be longer than healthcheckStartPeriod (%s)", h.StartInterval, h.StartPeriod)
	}
	if h.Retries < 1 || h.Retries > 10 {
		r.fail("healthcheckRetries", "%d is out of range; use 1 to 10", h.Retries)
	}
	if h.WaitTimeout > 0 && h.WaitTimeout < h.StartInterval {
		r.fail("healthyTimeout", "%s is shorter than one start-phase healthcheck; use at least healthcheckStartInterval", h.WaitTimeout)
	}
}

func validateLogging(r *reader, l components.Logging) {
	size, err := components.ParseUnitBytes(l.MaxSize)
	switch {
	case err != nil:
		r.fail("logMaxSize", "%v", err)
	case size < minLogSize || size > maxLogSize:
		r.fail("logMaxSize", "%s is out of range; rotate at %s to %s", size, minLogSize, maxLogSize)
	}
	if l.MaxFile < 1 || l.MaxFile > maxLogFile {
		r.fail("logMaxFile", "%d is out of range; keep 1 to %d files", l.MaxFile, maxLogFile)
	}
}

func validateMonitoring(r *reader, m MonitoringConfig) {
	if v := m.AlertErrorRatio; !(v > 0 && v < 1) && !r.has("alertErrorRatio") {
		r.fail("alertErrorRatio", "%q is not a ratio; write a number between 0 and 1, e.g. 0.05", m.AlertErrorRatioText)
	}
	scrape, err := model.ParseDuration(m.ScrapeInterval)
	switch {
	case err != nil || scrape <= 0:
		r.fail("prometheusScrapeInterval", "%q is not a positive Prometheus duration; write e.g. 15s or 1m", m.ScrapeInterval)
	case time.Duration(scrape) < time.Second || time.Duration(scrape) > time.Hour:
		r.fail("prometheusScrapeInterval", "%s is out of range; scrape every 1s to 1h", m.ScrapeInterval)
	}
	retention, err := model.ParseDuration(m.Retention)
	switch {
	case err != nil || retention <= 0:
		r.fail("prometheusRetention", "%q is not a positive Prometheus duration; write e.g. 15d or 12h", m.Retention)
	case time.Duration(retention) < 2*time.Hour || time.Duration(retention) > 10*365*24*time.Hour:
		r.fail("prometheusRetention", "%s is out of range; keep samples 2h (one block) to 10y", m.Retention)
	case scrape > 0 && time.Duration(retention) < time.Duration(scrape):
		r.fail("prometheusRetention", "%q is shorter than one scrape interval (%s)", m.Retention, m.ScrapeInterval)
	}
}

// validateBackup checks the backup schedule and the WAL archive's limits.
func validateBackup(r *reader, b BackupConfig) {
	if !r.has("backup.interval") && (b.Every < minBackupInterval || b.Every > maxBackupInterval) {
		r.fail("backup.interval", "%s is out of range; back up every %s to %s", b.Interval, minBackupInterval, maxBackupInterval)
	}
	if b.Keep < 1 || b.Keep > maxBackupKeep {
		r.fail("backup.keep", "%d is out of range; keep 1 to %d backups of each kind", b.Keep, maxBackupKeep)
	}
	durationWithin(r, "backup.walMaxAge", b.MaxAge, minWALMaxAge, maxWALMaxAge)
	if b.WALRetainedLimit < minWALRetained || b.WALRetainedLimit > maxWALRetained || !b.WALRetainedLimit.WholeMiB() {
		r.fail("backup.walRetainedLimit", "%s is out of range; use a whole number of megabytes from %s to %s (a WAL segment is 16M)", b.WALRetainedLimit, minWALRetained, maxWALRetained)
	}
}
