package hostdrivers

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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
// p, or nil when it has none.
func ReadCompatNote(p string) (*CompatNote, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".note.cuda.fwd_compatibility")
	if s == nil || s.Type != elf.SHT_NOTE {
		return nil, nil
	}
	if s.Size > 1<<16 {
		return nil, fmt.Errorf("note section of %d bytes", s.Size)
	}
	b, err := s.Data()
	if err != nil {
		return nil, err
	}
	align := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz := f.ByteOrder.Uint32(b), f.ByteOrder.Uint32(b[4:])
		off := uint64(12)
		if off+align(namesz)+uint64(descsz) > uint64(len(b)) {
			return nil, fmt.Errorf("note of %d+%d bytes overruns its section", namesz, descsz)
		}
		name := string(bytes.TrimRight(b[off:off+uint64(namesz)], "\x00"))
		desc := bytes.Trim(b[off+align(namesz):off+align(namesz)+uint64(descsz)], "\x00")
		if name == compatOwner {
			var n CompatNote
			if err := json.Unmarshal(desc, &n); err != nil {
				return nil, fmt.Errorf("note descriptor: %w", err)
			}
			return &n, nil
		}
		next := off + align(namesz) + align(descsz)
		if next > uint64(len(b)) {
			break
		}
		b = b[next:]
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
