// Package buildinfo reports which pvehci this is: the release version, the
// source commit and the build time stamped in by the linker, and the Go
// toolchain that built it. Operators paste this into bug reports, and the
// cluster compares it between nodes, so it must never be empty.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker: go build -ldflags "-X github.com/pvehci/pvehci/internal/buildinfo.version=v0.1.0 ...".
// They stay unexported so that nothing at run time can change what a binary claims to be.
var (
	version   = ""
	commit    = ""
	buildTime = ""
)

// Info describes one build of pvehci.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	BuildTime string `json:"build_time"`
	Platform  string `json:"platform"`
}

// Get returns the build's identity. Values the linker did not set fall back
// to what the Go toolchain recorded (module version, VCS revision and time),
// and then to "dev" and "unknown", so that a `go run` or `go test` binary is
// recognisable as such.
func Get() Info {
	info := Info{
		Version:   version,
		Commit:    commit,
		BuildTime: buildTime,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.BuildTime == "" {
					info.BuildTime = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.BuildTime == "" {
		info.BuildTime = "unknown"
	}
	return info
}
