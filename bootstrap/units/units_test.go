package units

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() Daemon {
	return Daemon{Binary: "/usr/bin/pvehci", Node: "pve1", PeerListen: ":3372",
		Advertise: "10.0.0.1:3372", APIListen: "10.0.0.1:3370", Controller: true}
}

func TestDaemonUnitGoldenAndRealVerify(t *testing.T) {
	got, err := sample().Render()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "pvehci.service")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("pvehci.service differs from %s (run go test -update):\n%s", golden, got)
	}

	// The unit means what we intend when systemd reads it back.
	opts, err := unit.DeserializeOptions(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	want2 := map[string]string{"Type": "notify", "WatchdogSec": "30s", "Restart": "on-failure", "StateDirectory": "pvehci"}
	for _, o := range opts {
		if v, ok := want2[o.Name]; ok && o.Value != v {
			t.Errorf("%s=%s, want %s", o.Name, o.Value, v)
		}
		delete(want2, o.Name)
		if o.Name == "ExecStart" && !strings.Contains(o.Value, "--api-listen 10.0.0.1:3370") {
			t.Errorf("ExecStart lacks the API address: %s", o.Value)
		}
	}
	if len(want2) > 0 {
		t.Errorf("unit lacks %v", want2)
	}

	// And the real systemd-analyze accepts it without a word on stderr.
	path := filepath.Join(t.TempDir(), "pvehci.service")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	validatetest.Check(t, validate.SystemdVerify(ctx, validate.SystemdOptions{
		Executables: []string{"/usr/bin/pvehci"},
		Units:       []string{"network-online.target", "pve-guests.service"},
	}, path))
}

func TestDaemonUnitRefusesValuesThatChangeItsMeaning(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Daemon)
		want string
	}{
		{"relative binary", func(d *Daemon) { d.Binary = "pvehci" }, "absolute path"},
		{"newline in node", func(d *Daemon) { d.Node = "pve1\nExecStartPre=/bin/rm" }, "whitespace"},
		{"space in address", func(d *Daemon) { d.Advertise = "10.0.0.1 :3372" }, "whitespace"},
		{"specifier", func(d *Daemon) { d.Node = "%H" }, "%"},
		{"empty API address", func(d *Daemon) { d.APIListen = "" }, "empty"},
		{"tiny watchdog", func(d *Daemon) { d.Watchdog = time.Second }, "at least 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sample()
			tt.edit(&d)
			_, err := d.Render()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
