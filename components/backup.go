package components

import (
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// BackupDir is where the backup service keeps its dumps, WAL archive and base backups.
const BackupDir = "/backups"

// BackupHost is the backup service's DNS name on the platform network.
const BackupHost = "backup"

// BackupMetricsPort is where the backup service answers Prometheus with the archive's state.
const BackupMetricsPort = 9188

// BackupCheckEvery is how often the backup service checks the WAL archive against the database.
const BackupCheckEvery = 5 * time.Second

// BackupScript is the backup service's program: WAL streaming, base backups, dumps, health,
// metrics and the steps of a restore (components/assets/backup.sh).
var BackupScript = File{Name: "backup.sh"}

// BackupArgs configure the backup service.
type BackupArgs struct {
	// ServiceArgs carry the PostgreSQL image, so the tools match the server.
	ServiceArgs
	// Interval is the time between two scheduled base backups and dumps.
	Interval time.Duration
	// Keep is how many good base backups and dumps are kept.
	Keep int
	// WALMaxAge is how long written WAL may wait for the archive while the service is healthy.
	WALMaxAge time.Duration
	// WALRetainedLimit is the WAL the slot may hold back on the database's disk while the
	// service is healthy.
	WALRetainedLimit UnitBytes
	// Database names the database; Password is the backup role's (a secret).
	Database string
	Password pulumi.StringInput
}

// Backup archives the database without pause: WAL streamed through a replication slot into its
// own volume, verified base backups and logical dumps on a schedule.
type Backup struct {
	pulumi.ResourceState
	Service
}

// BackupVolumeName is the Docker name of the backups volume, as Docker Compose would name a
// volume `backups` of project prefix.
func BackupVolumeName(prefix string) string { return prefix + "_backups" }

// NewBackup declares the backup service.
func NewBackup(ctx *pulumi.Context, name string, args *BackupArgs, opts ...pulumi.ResourceOption) (*Backup, error) {
	b := &Backup{}
	script, err := asset(BackupScript.Name)
	if err != nil {
		return nil, err
	}
	password := PostgresBackupPasswordFile.With(args.Password)
	svc, err := newService(ctx, name, b, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:Backup", Service: "backup", Spec: ContainerSpec{
		Aliases:    []string{BackupHost},
		Entrypoint: []string{"/bin/sh", BackupScript.Path()},
		Command:    []string{"serve"},
		// The volume is created root-owned and no user of the image owns it: root, with every
		// capability dropped, writes there (docs/hardening.md, exceptions).
		User: "0",
		Env: plainEnv(map[string]string{
			"PGHOST":                          PostgresHost,
			"PGPORT":                          strconv.Itoa(PostgresPort),
			"PGDATABASE":                      args.Database,
			"PGUSER":                          BackupRole,
			"BACKUP_PASSWORD_FILE":            password.Path(),
			"BACKUP_DIR":                      BackupDir,
			"BACKUP_INTERVAL_SECONDS":         strconv.Itoa(int(args.Interval.Seconds())),
			"BACKUP_KEEP":                     strconv.Itoa(args.Keep),
			"BACKUP_WAL_SLOT":                 WALSlot,
			"BACKUP_WAL_MAX_AGE_SECONDS":      strconv.Itoa(int(args.WALMaxAge.Seconds())),
			"BACKUP_WAL_RETAINED_LIMIT_BYTES": strconv.FormatInt(int64(args.WALRetainedLimit), 10),
			"BACKUP_METRICS_PORT":             strconv.Itoa(BackupMetricsPort),
			"BACKUP_CHECK_SECONDS":            strconv.Itoa(int(BackupCheckEvery.Seconds())),
		}),
		Files:         []File{password, BackupScript.With(pulumi.String(script))},
		HealthCheck:   []string{"CMD", "/bin/sh", BackupScript.Path(), "health"},
		WritablePaths: []string{"/tmp"},
	}, Data: &DataVolume{Name: BackupVolumeName(args.Prefix), Path: BackupDir}, Outputs: pulumi.Map{
		"interval": pulumi.String(args.Interval.String()),
		"keep":     pulumi.Int(args.Keep),
	}}, opts)
	if err != nil {
		return nil, err
	}
	b.Service = svc
	return b, nil
}
