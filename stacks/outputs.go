package stacks

import (
	"net"
	"net/url"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// edgeURL is how a user reaches the app through the edge: https on edge.hostname, with the
// published port unless it is https's own (or the edge publishes none, behind a proxy of the
// operator's).
func (c *Config) edgeURL() string {
	host := c.Edge.Hostname
	if hp := c.Edge.Serve; hp != nil && hp.Port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(hp.Port))
	}
	return (&url.URL{Scheme: "https", Host: host}).String()
}

// export exports the names of every workload and volume by service, each row's own outputs,
// and what deploy.sh and a user need to reach the stack.
func (p *Platform) export(ctx *pulumi.Context) {
	workloads, volumes := pulumi.Map{}, pulumi.StringMap{}
	for _, s := range p.Config.running() {
		dep, ok := p.Services[s.Name]
		if !ok {
			continue
		}
		for name, w := range dep.WorkloadNames() {
			workloads[name] = w
		}
		if v := dep.DataVolume(); v != nil {
			volumes[s.Name] = v.Name
		}
		if s.Outputs != nil {
			for k, v := range s.Outputs(dep, p) {
				ctx.Export(k, v)
			}
		}
	}
	ctx.Export(p.Config.Target.WorkloadNoun()+"Names", workloads)
	ctx.Export("volumeNames", volumes)
	ctx.Export("networkNames", pulumi.StringMap(p.networkNames()))
	ctx.Export("orchestrator", pulumi.String(p.Config.Target.Orchestrator()))
	ctx.Export("dockerHost", pulumi.String(DockerHost(p.Config.DockerHost)))
}
