package hostfile

import "fmt"

// GuardProcfs turns a panic inside a procfs parser into an error naming
// what was being read. procfs v0.23.0 slices and dereferences unchecked on
// some malformed sysfs files (an empty bcache attribute, a non-numeric tape
// counter); a bad file must fail one collector's scrape, not crash it. Use
// as `defer guardProcfs(path, &err)` in a function with a named error.
func GuardProcfs(what string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("parsing %s: malformed input (procfs: %v)", what, p)
	}
}
