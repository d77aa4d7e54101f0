//go:build race

package state

// raceEnabled shortens the random sequences under the race detector, which
// slows them about fivefold, to keep the package's test time near 10 s.
const raceEnabled = true
