package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// ErrParse marks file content that does not parse. Errors carry the line
// (quoted, truncated) and, once a Group wraps them, the file's path.
var ErrParse = errors.New("malformed cgroup file")

// maxLineInError bounds how much of a bad line an error message quotes.
const maxLineInError = 80

func parseError(lineNo int, line []byte, why string) error {
	if len(line) > maxLineInError {
		line = line[:maxLineInError]
	}
	return fmt.Errorf("%w: line %d %q: %s", ErrParse, lineNo, line, why)
}

// nextLine splits b at the first newline: the line (without "\n") and the rest.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// parseUint parses a decimal uint64 without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseKeyed walks a flat-keyed file ("key value" per line, as cpu.stat,
// memory.stat and memory.events are) and calls set for each line. Unknown
// keys are the caller's to ignore: kernels add keys over time. An empty
// file, a line without a value or a value that is not a decimal integer is
// an error.
func parseKeyed(b []byte, set func(key []byte, v uint64)) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: empty", ErrParse)
	}
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(key) == 0 {
			return parseError(n, line, "want `key value`")
		}
		v, ok := parseUint(val)
		if !ok {
			return parseError(n, line, "value is not an unsigned integer")
		}
		set(key, v)
	}
	return nil
}
