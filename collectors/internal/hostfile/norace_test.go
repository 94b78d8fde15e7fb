//go:build !race

package hostfile

const raceEnabled = false
