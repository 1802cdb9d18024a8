// Package broken does not compile: testreport's test counts its build
// failure.
package broken

import "testing"

func TestNothing(t *testing.T) { undefined() }
