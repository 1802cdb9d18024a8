package hostdrivers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// compact re-encodes JSON without indentation, keys sorted.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(buf.String())
}

// sourcesOf is sources for a test: the directories to search, no watches.
func sourcesOf(o *Options) ([]Source, error) {
	src, _, err := sources(o, nil)
	return src, err
}
