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

// PostgresPasswordFile is where PostgreSQL and its clients read the password.
var PostgresPasswordFile = File{Name: "postgres_password", Secret: true}

// PostgresArgs configure the TimescaleDB (PostgreSQL) service.
type PostgresArgs struct {
	ServiceArgs
	// Database is the database created on first start.
	Database string
	// User is the role that owns it.
	User string
	// Password is the role's password (a secret).
	Password pulumi.StringInput
}

// Postgres is the time-series database: TimescaleDB on PostgreSQL, data in its named volume.
type Postgres struct {
	pulumi.ResourceState
	Service
	// ConnectionString reaches the database from the platform network (secret).
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
	password := PostgresPasswordFile.With(args.Password)
	entrypoint, err := asset("postgres-entrypoint.sh")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	setPassword, err := asset("postgres-set-password.sh")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	wrapper := File{Name: "postgres-entrypoint.sh", Content: pulumi.String(entrypoint)}
	svc, err := newService(ctx, name, pg, args.ServiceArgs, serviceDecl{typ: "maricusco:components:Postgres", service: "postgres", spec: ContainerSpec{
		Aliases: []string{PostgresHost},
		// The image's entrypoint, wrapped so that a rotated password reaches an existing database.
		Entrypoint: []string{"/bin/sh", wrapper.Path()},
		Command:    []string{"postgres"},
		Env: plainEnv(map[string]string{
			"POSTGRES_DB":            args.Database,
			"POSTGRES_USER":          args.User,
			"POSTGRES_PASSWORD_FILE": password.Path(),
		}),
		Files: []File{password, wrapper, {Name: "postgres-set-password.sh", Content: pulumi.String(setPassword)}},
		Ports: args.ports(PostgresPort),
		// Over TCP, so the temporary socket-only server of the first initialisation does not count as ready.
		HealthCheck:   []string{"CMD", "pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(PostgresPort), "-U", args.User, "-d", args.Database},
		WritablePaths: []string{"/var/run/postgresql", "/tmp"},
		// The entrypoint starts as root to own the data directory, then drops to the postgres user.
		Capabilities: []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
	}, data: args.dataAt("postgres", "/var/lib/postgresql/data"), outputs: pulumi.Map{"connectionString": pg.ConnectionString}}, opts)
	if err != nil {
		return nil, err
	}
	pg.Service = svc
	return pg, nil
}
