package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/maricusco/infra/stacks"
)

// containerCopy is what a container receives, here: its files written into a directory, and its
// environment and command line with the files' container paths pointing at the copies.
type containerCopy struct {
	files map[string]string // container path → local copy
	env   map[string]string
}

// copyContainer writes c's uploaded files below the server's directory (readable by its user).
func (s *postgresServer) copyContainer(t *testing.T, c Resource, below string) containerCopy {
	t.Helper()
	contents, _ := uploads(c)
	cc := containerCopy{files: map[string]string{}}
	for path, content := range contents {
		cc.files[path] = s.file(t, filepath.Join(below, path), content)
	}
	vars, _ := env(c)
	cc.env = map[string]string{}
	for k, v := range vars {
		cc.env[k] = cc.local(v)
	}
	return cc
}

// local rewrites every container path in v to its copy.
func (cc containerCopy) local(v string) string {
	paths := make([]string, 0, len(cc.files))
	for p := range cc.files {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		v = strings.ReplaceAll(v, p, cc.files[p])
	}
	return v
}

// environ is the environment as exec takes it, with extra entries last (they win).
func (cc containerCopy) environ(extra ...string) []string {
	out := make([]string, 0, len(cc.env)+len(extra))
	for k, v := range cc.env {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}

// database is PostgreSQL set up as the program's postgres container sets it up: its server
// settings and client authentication rules, and its roles script run at start, reading the
// passwords from the secret files the container receives.
type database struct {
	*postgresServer
	container containerCopy
	name      string
}

// newDatabase starts a cluster made as the image makes one with POSTGRES_USER bootstrap (the
// program's postgres; an earlier program's app role), with the stack's settings from res.
func newDatabase(t *testing.T, res *Result, bootstrap string) *database {
	t.Helper()
	pg := res.Container(t, container("postgres"))
	s := newPostgresServer(t)
	d := &database{postgresServer: s, container: s.copyContainer(t, pg, "container")}
	command := strs(pg.Inputs["command"])
	require.Equal(t, "postgres", command[0])
	for _, arg := range command[1:] {
		s.serverArgs = append(s.serverArgs, d.container.local(arg))
	}
	d.name = d.container.env["POSTGRES_DB"]
	s.initdb(t, bootstrap, d.name, "bootstrap-Password-1")
	return d
}

// roles runs the roles script, as the container's entrypoint does at every start.
func (d *database) roles(t *testing.T) string {
	t.Helper()
	_, stderr, err := d.output(d.container.environ("PGHOST="+d.socket, "PGPORT="+strconv.Itoa(d.port)), "sh", d.container.files["/run/maricusco/postgres-roles.sh"])
	require.NoError(t, err, stderr)
	return stderr
}

// rotate writes a new content into one of the container's secret files.
func (d *database) rotate(t *testing.T, file, password string) {
	t.Helper()
	d.file(t, strings.TrimPrefix(d.container.files[file], d.dir+"/"), password)
}

// password is a secret file's content.
func (d *database) password(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(d.container.files[file])
	require.NoError(t, err)
	return string(b)
}

func TestDatabaseRoles(t *testing.T) {
	res := mustRun(t, loadStack(t, "prod"))
	app := stacks.Namespace // the app's role is named after the project by default
	const (
		appFile     = "/run/secrets/postgres_password"
		superFile   = "/run/secrets/postgres_superuser_password"
		backupFile  = "/run/secrets/postgres_backup_password"
		databaseArg = "maricusco"
	)
	t.Run("the app owns its database and is no superuser", func(t *testing.T) {
		d := newDatabase(t, res, "postgres")
		d.roles(t)
		pw := d.password(t, appFile)
		_, err := d.sql(app, pw, databaseArg, "CREATE TABLE trades (id int)")
		require.NoError(t, err, "the app creates its tables")
		assert.Equal(t, "f|f|f|f", d.local(t, "postgres", databaseArg, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles WHERE rolname = '"+app+"'"))
		assert.Equal(t, app, d.local(t, "postgres", databaseArg, "SELECT datdba::regrole FROM pg_database WHERE datname = current_database()"))
		_, err = d.sql(app, pw, databaseArg, "COPY (SELECT 1) TO PROGRAM 'true'")
		require.Error(t, err, "an injection into the app's SQL cannot run programs on the server")
		assert.Contains(t, err.Error(), "pg_execute_server_program")
		_, err = d.sql(app, pw, databaseArg, "CREATE ROLE intruder SUPERUSER")
		assert.Error(t, err, "nor make roles")
	})
	t.Run("the backup role reads everything and writes nothing", func(t *testing.T) {
		d := newDatabase(t, res, "postgres")
		d.roles(t)
		_, err := d.sql(app, d.password(t, appFile), databaseArg, "CREATE TABLE trades (id int); INSERT INTO trades VALUES (1)")
		require.NoError(t, err)
		pw := d.password(t, backupFile)
		got, err := d.sql("backup", pw, databaseArg, "SELECT count(*) FROM trades")
		require.NoError(t, err)
		assert.Equal(t, "1", got)
		_, err = d.sql("backup", pw, databaseArg, "DELETE FROM trades")
		assert.ErrorContains(t, err, "permission denied")
		assert.Equal(t, "f|t", d.local(t, "postgres", databaseArg, "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = 'backup'"))
	})
	t.Run("over the network only the backup role may open a replication connection", func(t *testing.T) {
		d := newDatabase(t, res, "postgres")
		d.roles(t)
		replicate := func(role, password string) error {
			_, errOut, err := d.output([]string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=5"}, "psql",
				"host=127.0.0.1 port="+strconv.Itoa(d.port)+" user="+role+" dbname="+databaseArg+" replication=true", "-w", "-X", "-tAc", "IDENTIFY_SYSTEM")
			if err != nil {
				return fmt.Errorf("%w: %s", err, errOut)
			}
			return nil
		}
		require.NoError(t, replicate("backup", d.password(t, backupFile)), "the backup service streams WAL")
		err := replicate("postgres", d.password(t, superFile))
		require.Error(t, err, "the superuser, which has the REPLICATION attribute, is refused by pg_hba.conf")
		assert.Contains(t, err.Error(), "no pg_hba.conf entry for replication connection")
	})
	t.Run("each password logs in after a rotation and the old one is refused", func(t *testing.T) {
		d := newDatabase(t, res, "postgres")
		d.roles(t)
		for _, tc := range []struct{ role, file string }{{app, appFile}, {"postgres", superFile}, {"backup", backupFile}} {
			old := d.password(t, tc.file)
			_, err := d.sql(tc.role, old, databaseArg, "SELECT 1")
			require.NoError(t, err, "%s logs in with its password", tc.role)
			rotated := "rotated-" + tc.role + "-Password'\"1"
			d.rotate(t, tc.file, rotated)
			d.roles(t)
			_, err = d.sql(tc.role, rotated, databaseArg, "SELECT 1")
			assert.NoError(t, err, "%s logs in with the rotated password", tc.role)
			_, err = d.sql(tc.role, old, databaseArg, "SELECT 1")
			assert.Error(t, err, "%s's old password is refused", tc.role)
		}
	})
	t.Run("a cluster whose superuser was the app moves its data to a new app role", func(t *testing.T) {
		// What an earlier version of the program made: POSTGRES_USER was the app's role.
		d := newDatabase(t, res, app)
		d.local(t, app, databaseArg, `CREATE SCHEMA trading; CREATE TABLE trading.trades (id serial PRIMARY KEY, note text);
			INSERT INTO trading.trades (note) VALUES ('kept'); CREATE VIEW trading.recent AS SELECT * FROM trading.trades;
			CREATE TYPE trading.side AS ENUM ('buy', 'sell'); CREATE FUNCTION trading.one() RETURNS int LANGUAGE sql AS 'SELECT 1'`)
		log := d.roles(t)
		assert.Contains(t, log, "migrating a cluster whose superuser is the app's role")
		assert.Equal(t, "postgres|t", d.local(t, "postgres", databaseArg, "SELECT rolname, rolsuper FROM pg_roles WHERE oid = 10"), "the bootstrap superuser is renamed postgres")
		pw := d.password(t, appFile)
		got, err := d.sql(app, pw, databaseArg, "INSERT INTO trading.trades (note) VALUES ('new'); SELECT string_agg(note, ',' ORDER BY id) FROM trading.recent")
		require.NoError(t, err, "the new app role uses what the old one made")
		assert.Equal(t, "kept,new", got)
		owners := d.local(t, "postgres", databaseArg, `SELECT string_agg(DISTINCT owner::text, ',') FROM (
			SELECT relowner::regrole AS owner FROM pg_class WHERE relnamespace = 'trading'::regnamespace
			UNION ALL SELECT typowner::regrole FROM pg_type WHERE typname = 'side'
			UNION ALL SELECT proowner::regrole FROM pg_proc WHERE proname = 'one'
			UNION ALL SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'trading') o`)
		assert.Equal(t, app, owners)
		assert.Equal(t, "f", d.local(t, "postgres", databaseArg, "SELECT rolsuper FROM pg_roles WHERE rolname = '"+app+"'"))
		assert.Empty(t, d.local(t, "postgres", databaseArg, "SELECT rolname FROM pg_roles WHERE rolname = 'maricusco_migrator'"), "the migration leaves no role behind")
		again := d.roles(t)
		assert.NotContains(t, again, "migrating", "a second start has nothing to migrate")
	})
	t.Run("without backups the backup role cannot log in", func(t *testing.T) {
		off := mustRun(t, loadStack(t, "prod").with("backup", map[string]any{"enabled": false}))
		d := newDatabase(t, off, "postgres")
		d.roles(t)
		assert.Equal(t, "f", d.local(t, "postgres", databaseArg, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'backup'"))
	})
}

func TestRotatingAPasswordReplacesOnlyWhatReadsIt(t *testing.T) {
	for _, tc := range []struct {
		key     string
		changed []string
	}{
		{stacks.PostgresPasswordKey, []string{"postgres-container", "app"}},
		{stacks.PostgresSuperuserPasswordKey, []string{"postgres-container"}},
		{stacks.PostgresBackupPasswordKey, []string{"postgres-container", "backup-container"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			forEachStack(t, func(t *testing.T, stack string, before *Result) {
				after := mustRun(t, loadStack(t, stack).withSecret(tc.key, "rotated-Password-42"))
				var want []string
				for _, name := range tc.changed {
					if name != "app" {
						want = append(want, containerType+"::"+name)
						continue
					}
					for _, app := range before.AppInstances() {
						want = append(want, containerType+"::"+app.Name)
					}
				}
				plan := planDiff(before, after)
				assert.ElementsMatch(t, want, plan.Changed)
				assert.Len(t, plan.Removed, 1, "the generator gives way to the configured secret")
			})
		})
	}
}

func TestTheRolesAreSetAtEveryStart(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		pg := res.Container(t, container("postgres"))
		files, _ := uploads(pg)
		entrypoint := strs(pg.Inputs["entrypoints"])
		require.Len(t, entrypoint, 2)
		wrapper := files[entrypoint[1]]
		assert.Contains(t, wrapper, "sh /run/maricusco/postgres-roles.sh", "the entrypoint sets the roles at every start")
		assert.Contains(t, wrapper, `exec docker-entrypoint.sh "$@"`, "then hands over to the image's entrypoint")
		assert.True(t, pg.Inputs["init"].BoolValue(), "docker-init reaps the detached roles script")
		hc := strings.Join(strs(pg.Inputs["healthcheck"].ObjectValue()["tests"]), " ")
		assert.Contains(t, hc, "test -f /var/run/postgresql/maricusco-roles-ready", "no client is let in before its role exists")
	})
}

func TestGrafanaResetsItsAdminPasswordAtStart(t *testing.T) {
	forEachStack(t, func(t *testing.T, _ string, res *Result) {
		g := res.Container(t, container("grafana"))
		files, _ := uploads(g)
		entrypoint := strs(g.Inputs["entrypoints"])
		require.Len(t, entrypoint, 2)
		assert.Contains(t, files[entrypoint[1]], "admin reset-admin-password --password-from-stdin")
		assert.Contains(t, files[entrypoint[1]], `exec /run.sh "$@"`)
	})
}
