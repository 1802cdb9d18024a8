package hostdrivers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/nixglhost/nixglhost/pkg/elfscan"
)

// CompatNote is the JSON descriptor of a cuda_compat libcuda's
// ".note.cuda.fwd_compatibility" note (see CompatReport).
type CompatNote struct {
	Format int    `json:"Format"`
	CUDA   string `json:"CUDA Version"`
	Driver []int  `json:"Driver"`
	Device []int  `json:"Device"`
}

// compatOwner is the note owner name NVIDIA uses.
const compatOwner = "NVIDIA Corporation"

// ReadCompatNote returns the forward-compatibility note of the ELF file at
// p, or nil when it has none. The file is read through elfscan, whose note
// reader is bounded (64 KiB of notes at most) and fuzzed.
func ReadCompatNote(p string) (*CompatNote, error) {
	notes, err := elfscan.ReadNotes(p, ".note.cuda.fwd_compatibility")
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		if n.Owner != compatOwner {
			continue
		}
		var c CompatNote
		if err := json.Unmarshal(bytes.Trim(n.Desc, "\x00"), &c); err != nil {
			return nil, fmt.Errorf("%s: note descriptor: %w", p, err)
		}
		return &c, nil
	}
	return nil, nil
}

// MajorVersion returns the first component of a dotted version, or -1.
func MajorVersion(v string) int {
	m, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(m)
	if err != nil {
		return -1
	}
	return n
}

// CompareVersions compares dotted numeric versions ("2.34", "535.261.03"):
// negative, zero or positive as a is lower, equal or higher.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
