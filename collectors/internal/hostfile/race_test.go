//go:build race

package hostfile

// raceEnabled says whether the tests run under the race detector, whose
// instrumentation changes what allocates.
const raceEnabled = true
