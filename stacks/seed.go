package stacks

// The seed document's "Resource Limits" table is in the registry, a row per service, in its own
// compose notation; seedRow marks a row the seed gives. Prometheus, the load balancer and the
// backup service have no row in the seed, and oursRow marks theirs: one CPU and 1G hold 15 days of
// the app's metrics with room to spare, and a 256M reservation keeps Prometheus's head block in
// memory under pressure; nginx proxying a few thousand connections needs far less than its 256M
// limit; pg_dump and pg_basebackup stream, so half a CPU and 512M back up a database of any size,
// only more slowly, without starving the server they read.

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

// seedRow is a row of the seed's table: limits, then reservations.
func seedRow(cpus, memory, reservedCPUs, reservedMemory string) ResourceSpec {
	return ResourceSpec{Limits: Amounts{cpus, memory}, Reservations: Amounts{reservedCPUs, reservedMemory}}
}

// oursRow is a row the seed leaves out, ours.
func oursRow(cpus, memory, reservedCPUs, reservedMemory string) ResourceSpec {
	return seedRow(cpus, memory, reservedCPUs, reservedMemory)
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
