package stacks

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// seedResources is the seed document's "Resource Limits" table, in its own compose notation.
// Prometheus, the load balancer (lb) and the backup service have no row in the seed; theirs are
// ours: one CPU and 1G hold 15 days of the app's metrics with room to spare, and a 256M
// reservation keeps Prometheus's head block in memory under pressure; nginx proxying a few
// thousand connections needs far less than its 256M limit; pg_dump streams, so half a CPU and
// 512M dump a database of any size, only more slowly, without starving the server it reads.
const seedResources = `
app:
  limits: { cpus: '2.0', memory: 4G }
  reservations: { cpus: '0.5', memory: 512M }
postgres:
  limits: { cpus: '2.0', memory: 2G }
  reservations: { cpus: '0.5', memory: 512M }
redis:
  limits: { cpus: '1.0', memory: 1G }
  reservations: { cpus: '0.25', memory: 256M }
chromadb:
  limits: { cpus: '2.0', memory: 2G }
  reservations: { cpus: '0.5', memory: 512M }
prometheus:
  limits: { cpus: '1.0', memory: 1G }
  reservations: { cpus: '0.25', memory: 256M }
grafana:
  limits: { cpus: '1.0', memory: 512M }
  reservations: { cpus: '0.25', memory: 128M }
lb:
  limits: { cpus: '1.0', memory: 256M }
  reservations: { cpus: '0.25', memory: 64M }
backup:
  limits: { cpus: '0.5', memory: 512M }
  reservations: { cpus: '0.1', memory: 64M }
`

// ResourceSpec is one service's limits and reservations in compose notation (cpus '2.0', memory 4G).
type ResourceSpec struct {
	Limits       Amounts `yaml:"limits" json:"limits"`
	Reservations Amounts `yaml:"reservations" json:"reservations"`
}

// Amounts are a CPU count and a memory size, as compose writes them.
type Amounts struct {
	CPUs   string `yaml:"cpus" json:"cpus"`
	Memory string `yaml:"memory" json:"memory"`
}

// SeedResources returns the default limits and reservations of every service.
func SeedResources() (map[string]ResourceSpec, error) {
	var out map[string]ResourceSpec
	if err := yaml.Unmarshal([]byte(seedResources), &out); err != nil {
		return nil, fmt.Errorf("seed resources: %w", err)
	}
	return out, nil
}

// overlay replaces the fields of s that o sets.
func (s ResourceSpec) overlay(o ResourceSpec) ResourceSpec {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	s.Limits.CPUs = pick(s.Limits.CPUs, o.Limits.CPUs)
	s.Limits.Memory = pick(s.Limits.Memory, o.Limits.Memory)
	s.Reservations.CPUs = pick(s.Reservations.CPUs, o.Reservations.CPUs)
	s.Reservations.Memory = pick(s.Reservations.Memory, o.Reservations.Memory)
	return s
}
