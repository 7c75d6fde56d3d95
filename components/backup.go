package components

import (
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// BackupDir is where the backup service writes its dumps.
const BackupDir = "/backups"

// BackupScript is the backup service's program: the schedule, the on-demand backup, the
// healthcheck and the restore (components/assets/backup.sh).
var BackupScript = File{Name: "backup.sh"}

// BackupArgs configure the backup service.
type BackupArgs struct {
	// ServiceArgs carry the PostgreSQL image, so the client matches the server.
	ServiceArgs
	// Interval is the time between two scheduled dumps.
	Interval time.Duration
	// Keep is how many good dumps are kept.
	Keep int
	// Database, User and Password reach the database.
	Database, User string
	Password       pulumi.StringInput
	// Postgres is the database's container: the first dump is taken once it is healthy.
	Postgres pulumi.Resource
}

// Backup takes verified pg_dump backups of the database on a schedule into its own volume.
type Backup struct {
	pulumi.ResourceState
	Service
}

// BackupVolumeName is the Docker name of the backups volume, as Docker Compose would name a
// volume `backups` of project prefix.
func BackupVolumeName(prefix string) string { return prefix + "_backups" }

// NewBackup declares the backup service. Its first dump is taken once the database is healthy.
func NewBackup(ctx *pulumi.Context, name string, args *BackupArgs, opts ...pulumi.ResourceOption) (*Backup, error) {
	b := &Backup{}
	script, err := asset(BackupScript.Name)
	if err != nil {
		return nil, err
	}
	password := PostgresPasswordFile.With(args.Password)
	svc, err := newService(ctx, name, b, args.ServiceArgs, serviceDecl{typ: "maricusco:components:Backup", service: "backup", spec: ContainerSpec{
		Aliases:    []string{"backup"},
		Entrypoint: []string{"/bin/sh", BackupScript.Path()},
		Command:    []string{"serve"},
		// The volume is created root-owned and no user of the image owns it: root, with every
		// capability dropped, writes there (README: hardening exceptions).
		User: "0",
		Env: plainEnv(map[string]string{
			"PGHOST":                  PostgresHost,
			"PGPORT":                  strconv.Itoa(PostgresPort),
			"PGDATABASE":              args.Database,
			"PGUSER":                  args.User,
			"POSTGRES_PASSWORD_FILE":  password.Path(),
			"BACKUP_DIR":              BackupDir,
			"BACKUP_INTERVAL_SECONDS": strconv.Itoa(int(args.Interval.Seconds())),
			"BACKUP_KEEP":             strconv.Itoa(args.Keep),
		}),
		Files:         []File{password, BackupScript.With(pulumi.String(script))},
		HealthCheck:   []string{"CMD", "/bin/sh", BackupScript.Path(), "health"},
		WritablePaths: []string{"/tmp"},
		After:         []pulumi.Resource{args.Postgres},
	}, data: &DataVolume{Name: BackupVolumeName(args.Prefix), Path: BackupDir}, outputs: pulumi.Map{
		"interval": pulumi.String(args.Interval.String()),
		"keep":     pulumi.Int(args.Keep),
	}}, opts)
	if err != nil {
		return nil, err
	}
	b.Service = svc
	return b, nil
}
