//go:build !linux

package cli

import "os"

// isTerminal is an approximation off Linux, where pvehci does not run in
// production: a character device may also be /dev/null, which then reads
// as an empty answer and so is still not taken as a yes.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
