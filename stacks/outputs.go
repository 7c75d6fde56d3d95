package stacks

import (
	"net/url"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// URL is how a user reaches a published service: the Docker host's name, or the bound address.
func (p *Platform) URL(service string) string {
	hp := p.Config.Services[service].Publish
	if hp == nil {
		return ""
	}
	host := hp.IP
	if host == "0.0.0.0" || host == "::" {
		host = "localhost"
		if u, err := url.Parse(DockerHost(p.Config.DockerHost)); err == nil && (u.Scheme == "ssh" || u.Scheme == "tcp") && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	return (&url.URL{Scheme: "http", Host: host + ":" + strconv.Itoa(hp.Port)}).String()
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
