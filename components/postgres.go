package components

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PostgresPort is PostgreSQL's port on the platform network.
const PostgresPort = 5432

// PostgresHost is PostgreSQL's DNS name on the platform network.
const PostgresHost = "postgres"

// The database's roles beside the app's: the one superuser, for maintenance, and the backup
// service's, which may replicate and read all data.
const (
	PostgresSuperuser = "postgres"
	BackupRole        = "backup"
)

// WALSlot is the replication slot the backup service streams WAL through: the database keeps
// every WAL segment the archive does not hold yet.
const WALSlot = "maricusco_wal"

// The password files: the app role's (read by the app, the database and its backups' restore),
// the superuser's and the backup role's.
var (
	PostgresPasswordFile          = File{Name: "postgres_password", Secret: true}
	PostgresSuperuserPasswordFile = File{Name: "postgres_superuser_password", Secret: true}
	PostgresBackupPasswordFile    = File{Name: "postgres_backup_password", Secret: true}
)

// rolesReady is written once the roles are what the stack says; the healthcheck waits for it.
const rolesReady = "/var/run/postgresql/maricusco-roles-ready"

// PostgresArgs configure the TimescaleDB (PostgreSQL) service.
type PostgresArgs struct {
	ServiceArgs
	// Database is the database created on first start.
	Database string
	// User is the app's role, which owns the database and is no superuser.
	User string
	// Password is the app role's password (a secret).
	Password pulumi.StringInput
	// SuperuserPassword is the superuser's password (a secret).
	SuperuserPassword pulumi.StringInput
	// Backups are the backup role's settings; nil when the stack runs no backups.
	Backups *PostgresBackups
}

// PostgresBackups is what the database does for the backup service.
type PostgresBackups struct {
	// Password is the backup role's password (a secret).
	Password pulumi.StringInput
	// RetainedLimit is the WAL the slot may hold back before the backups turn unhealthy; the
	// database drops the slot's claim at four times as much, so a stuck receiver cannot fill
	// its disk.
	RetainedLimit UnitBytes
}

// Postgres is the time-series database: TimescaleDB on PostgreSQL, data in its named volume.
type Postgres struct {
	pulumi.ResourceState
	Service
	// ConnectionString reaches the database from the platform network as the app (secret).
	ConnectionString pulumi.StringOutput
}

// NewPostgres declares the PostgreSQL service.
func NewPostgres(ctx *pulumi.Context, name string, args *PostgresArgs, opts ...pulumi.ResourceOption) (*Postgres, error) {
	pg := &Postgres{}
	pg.ConnectionString = pulumi.ToSecret(args.Password.ToStringOutput().ApplyT(func(pw string) string {
		u := url.URL{
			Scheme: "postgresql",
			User:   url.UserPassword(args.User, pw),
			Host:   PostgresHost + ":" + strconv.Itoa(PostgresPort),
			Path:   "/" + args.Database,
		}
		return u.String()
	})).(pulumi.StringOutput)
	files, err := postgresFiles(args)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	wrapper, hba := files[0], files[1]
	superuser, app := PostgresSuperuserPasswordFile.With(args.SuperuserPassword), PostgresPasswordFile.With(args.Password)
	env := map[string]string{
		"POSTGRES_DB":                 args.Database,
		"POSTGRES_USER":               PostgresSuperuser,
		"POSTGRES_PASSWORD_FILE":      superuser.Path(),
		"MARICUSCO_APP_USER":          args.User,
		"MARICUSCO_APP_PASSWORD_FILE": app.Path(),
		"MARICUSCO_BACKUP_USER":       BackupRole,
		"MARICUSCO_BACKUPS":           strconv.FormatBool(args.Backups != nil),
		"MARICUSCO_WAL_SLOT":          WALSlot,
	}
	retained := UnitBytes(1 << 30)
	if args.Backups != nil {
		env["MARICUSCO_BACKUP_PASSWORD_FILE"] = PostgresBackupPasswordFile.Path()
		retained = args.Backups.RetainedLimit
	}
	svc, err := newService(ctx, name, pg, args.ServiceArgs, ServiceDecl{Type: "maricusco:components:Postgres", Service: "postgres", Spec: ContainerSpec{
		Aliases: []string{PostgresHost},
		// The image's entrypoint, wrapped so that the roles and their passwords reach an
		// existing database too.
		Entrypoint: []string{"/bin/sh", wrapper.Path()},
		Command: []string{"postgres", "-c", "hba_file=" + hba.Path(),
			// What the backup service's WAL streaming and base backups need, said out loud.
			"-c", "wal_level=replica", "-c", "max_wal_senders=10", "-c", "max_replication_slots=10",
			"-c", "max_slot_wal_keep_size=" + strconv.Itoa(4*retained.MiB()) + "MB"},
		Env:   plainEnv(env),
		Files: append(files, superuser, app),
		Ports: args.ports(PostgresPort),
		// The roles first, then the server over TCP (the temporary socket-only server of the
		// first initialisation does not count as ready).
		HealthCheck: []string{"CMD-SHELL", "test -f " + rolesReady + " && pg_isready -h 127.0.0.1 -p " + strconv.Itoa(PostgresPort) +
			" -U " + PostgresSuperuser + " -d " + args.Database},
		WritablePaths: []string{"/var/run/postgresql", "/tmp"},
		// The entrypoint starts as root to own the data directory, then drops to the postgres user.
		Capabilities: []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
	}, Data: args.DataAt("postgres", "/var/lib/postgresql/data"), Outputs: pulumi.Map{"connectionString": pg.ConnectionString}}, opts)
	if err != nil {
		return nil, err
	}
	pg.Service = svc
	return pg, nil
}

// postgresFiles are the entrypoint wrapper, the client authentication rules, the roles script
// and, with backups, the backup role's password.
func postgresFiles(args *PostgresArgs) ([]File, error) {
	entrypoint, err := asset("postgres-entrypoint.sh")
	if err != nil {
		return nil, err
	}
	roles, err := asset("postgres-roles.sh")
	if err != nil {
		return nil, err
	}
	hba, err := render("pg_hba.conf.tmpl", struct{ BackupRole string }{BackupRole})
	if err != nil {
		return nil, err
	}
	files := []File{
		{Name: "postgres-entrypoint.sh", Content: pulumi.String(entrypoint)},
		{Name: "pg_hba.conf", Content: pulumi.String(hba)},
		{Name: "postgres-roles.sh", Content: pulumi.String(roles)},
	}
	if args.Backups != nil {
		files = append(files, PostgresBackupPasswordFile.With(args.Backups.Password))
	}
	return files, nil
}
