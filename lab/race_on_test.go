//go:build race

package lab

// raceDetector is true in a -race build. The lab's daemons run the
// binary TestMain builds, which has no race detector; only the simulated
// kernel runs in the test process, several times slower with it.
const raceDetector = true
