package corosync

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/validate"
	"github.com/pvehci/pvehci/internal/validate/validatetest"
)

func toolContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Every file this package renders in its tests passes corosync -t as every
// one of its nodes.
func TestRenderedFilesPassCorosync(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range names {
		name := filepath.Base(p)
		if !strings.HasSuffix(name, ".conf") && !strings.HasSuffix(name, ".golden") || strings.HasPrefix(name, "plan-") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := mustParse(t, readTestdata(t, name))
			f := filepath.Join(t.TempDir(), "corosync.conf")
			if err := os.WriteFile(f, Render(c), 0o644); err != nil {
				t.Fatal(err)
			}
			validatetest.Check(t, validate.CorosyncAllNodes(toolContext(t), f))
		})
	}
	if n < 8 {
		t.Errorf("checked only %d files; did testdata move?", n)
	}
}

// corosync -t really does reject what Validate reports it would not catch
// otherwise, and what ToolChecker is there for.
func TestToolChecker(t *testing.T) {
	t.Parallel()
	var tc ToolChecker
	validatetest.Check(t, tc.Check(toolContext(t), readTestdata(t, "pve8-prio-2link.link2.golden")))
	bad := fixture(t, "pve8-prio-2link.conf", "link_mode: passive", "link_mode: bogus")
	validatetest.Rejected(t, tc.Check(toolContext(t), bad), `The Knet link mode "bogus" specified is invalid.`)
}

// The whole edit on a simulated /etc/pve with the real corosync -t.
func TestEditorWithToolChecker(t *testing.T) {
	t.Parallel()
	dir, fsys := newPVE(t, "pve9-create-3node.conf")
	ed := &Editor{FS: fsys, Lock: &FakeLock{}, Checker: ToolChecker{}}
	p, err := ed.Plan("add corosync link 1", addLink1)
	if err != nil {
		t.Fatal(err)
	}
	validatetest.Check(t, ed.Apply(toolContext(t), p))
	if got, want := readHost(t, dir, ConfPath), string(readTestdata(t, "pve9-create-3node.link1.golden")); got != want {
		t.Errorf("corosync.conf after apply:\n%s", diffText(want, got))
	}
}
