package components

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"

	units "github.com/docker/go-units"
)

// NanoCPUs is a CPU amount in billionths of a CPU, the unit of Docker's --cpus and of a swarm
// service's limits and reservations. It parses compose's notation ('2.0', '0.5'), as compose-go's
// NanoCPUs does.
type NanoCPUs int64

// ParseNanoCPUs reads a positive CPU count in compose notation.
func ParseNanoCPUs(s string) (NanoCPUs, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || r.Sign() <= 0 {
		return 0, fmt.Errorf("%q is not a CPU count; write a positive number such as '2.0' or '0.5'", s)
	}
	n := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() || !n.Num().IsInt64() {
		return 0, fmt.Errorf("%q is finer than a billionth of a CPU or too large; write e.g. '2.0' or '0.25'", s)
	}
	return NanoCPUs(n.Num().Int64()), nil
}

// UnmarshalText parses compose notation, so a NanoCPUs field decodes itself.
func (n *NanoCPUs) UnmarshalText(b []byte) error {
	v, err := ParseNanoCPUs(string(b))
	*n = v
	return err
}

// CPUs is the amount as a number of CPUs.
func (n NanoCPUs) CPUs() float64 { return float64(n) / 1e9 }

// String is compose notation.
func (n NanoCPUs) String() string { return new(big.Rat).SetFrac64(int64(n), 1e9).FloatString(2) }

// UnitBytes is a memory size in bytes. It parses the seed's notation: a number and one of b, k,
// m, g (4G, 512M), in powers of 1024 as Docker reads them, as compose-go's UnitBytes does.
type UnitBytes int64

// ParseUnitBytes reads a positive size in the seed's notation.
func ParseUnitBytes(s string) (UnitBytes, error) {
	t := strings.TrimSpace(s)
	if !seedSize.MatchString(t) {
		return 0, fmt.Errorf("%q is not a size; write a positive number and one of b, k, m, g as the seed does (e.g. 4G, 512M)", s)
	}
	n, err := units.RAMInBytes(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size; write a positive number and one of b, k, m, g as the seed does (e.g. 4G, 512M)", s)
	}
	return UnitBytes(n), nil
}

// UnmarshalText parses the seed's notation, so a UnitBytes field decodes itself.
func (u *UnitBytes) UnmarshalText(b []byte) error {
	v, err := ParseUnitBytes(string(b))
	*u = v
	return err
}

// Bytes is the size in bytes.
func (u UnitBytes) Bytes() int64 { return int64(u) }

// MiB is the size in whole mebibytes, rounded down.
func (u UnitBytes) MiB() int { return int(int64(u) / units.MiB) }

// WholeMiB tells whether the size is a whole number of mebibytes, the unit the docker provider's
// container limits take.
func (u UnitBytes) WholeMiB() bool { return int64(u)%units.MiB == 0 }

// String is the size in the seed's notation, in the largest unit that divides it (4G, 512M).
func (u UnitBytes) String() string {
	for _, unit := range []struct {
		size   int64
		suffix string
	}{{units.GiB, "G"}, {units.MiB, "M"}, {units.KiB, "K"}} {
		if int64(u)%unit.size == 0 {
			return fmt.Sprintf("%d%s", int64(u)/unit.size, unit.suffix)
		}
	}
	return fmt.Sprintf("%db", int64(u))
}

// seedSize is the seed's size notation: a number and one letter, b, k, m or g.
var seedSize = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bkmgBKMG]$`)

// Resources are a service's CPU and memory limits and reservations, as the seed's table gives them.
type Resources struct {
	// CPULimit is the CPU the service may use.
	CPULimit NanoCPUs
	// MemoryLimit is the hard memory limit.
	MemoryLimit UnitBytes
	// CPUReservation is the CPU the service is guaranteed.
	CPUReservation NanoCPUs
	// MemoryReservation is the memory the service is guaranteed.
	MemoryReservation UnitBytes
}

// CPUShares converts the CPU reservation to Docker's relative CPU weight (1024 per CPU): plain
// Docker has no CPU reservation, and a weight is what guarantees a share when CPUs are contended.
func (r Resources) CPUShares() int {
	return int(math.Round(r.CPUReservation.CPUs() * 1024))
}
