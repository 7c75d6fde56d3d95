package components

import (
	"fmt"

	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// SecretsArgs are the secrets the stack sets; each one left empty is generated.
type SecretsArgs struct {
	PostgresPassword          string
	PostgresSuperuserPassword string
	PostgresBackupPassword    string
	RedisPassword             string
	GrafanaAdminPassword      string
	// NamingKey asks for a generated key for the target's content-named files.
	NamingKey bool
}

// Secrets are the platform's credentials, always secret outputs. A generated one lives in the
// (encrypted) state, so it stays the same across updates.
type Secrets struct {
	pulumi.ResourceState

	// PostgresPassword is the app role's.
	PostgresPassword pulumi.StringOutput
	// PostgresSuperuserPassword is the superuser's, for maintenance.
	PostgresSuperuserPassword pulumi.StringOutput
	// PostgresBackupPassword is the backup role's.
	PostgresBackupPassword pulumi.StringOutput
	RedisPassword          pulumi.StringOutput
	GrafanaAdminPassword   pulumi.StringOutput
	// NamingKey keys the hashes in swarm configs' and secrets' names; it is never configured,
	// and only generated when asked for.
	NamingKey pulumi.StringInput
}

// NewSecrets declares the credentials.
func NewSecrets(ctx *pulumi.Context, name string, args *SecretsArgs, opts ...pulumi.ResourceOption) (*Secrets, error) {
	s := &Secrets{}
	if err := ctx.RegisterComponentResource("maricusco:components:Secrets", name, s, opts...); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var err error
	for _, item := range []struct {
		name  string
		value string
		out   *pulumi.StringOutput
	}{
		{"postgres-password", args.PostgresPassword, &s.PostgresPassword},
		{"postgres-superuser-password", args.PostgresSuperuserPassword, &s.PostgresSuperuserPassword},
		{"postgres-backup-password", args.PostgresBackupPassword, &s.PostgresBackupPassword},
		{"redis-password", args.RedisPassword, &s.RedisPassword},
		{"grafana-admin-password", args.GrafanaAdminPassword, &s.GrafanaAdminPassword},
	} {
		if *item.out, err = secretOrGenerated(ctx, s, name+"-"+item.name, item.value, renamedFrom(item.name)); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	}
	if args.NamingKey {
		key, err := secretOrGenerated(ctx, s, name+"-naming-key", "")
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		s.NamingKey = key
	}
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{}); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return s, nil
}

func secretOrGenerated(ctx *pulumi.Context, parent pulumi.Resource, name, value string, opts ...pulumi.ResourceOption) (pulumi.StringOutput, error) {
	if value != "" {
		return pulumi.ToSecret(pulumi.String(value)).(pulumi.StringOutput), nil
	}
	// Letters and digits only: the value goes into config files and connection URLs unquoted.
	pw, err := random.NewRandomPassword(ctx, name, &random.RandomPasswordArgs{
		Length:  pulumi.Int(32),
		Special: pulumi.Bool(false),
	}, append(opts, pulumi.Parent(parent))...)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("%s: %w", name, err)
	}
	return pulumi.ToSecret(pw.Result).(pulumi.StringOutput), nil
}
