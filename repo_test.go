// Tests in this file guard invariants of the whole repository rather than of
// one package, in the manner of tailscale's pkgdoc and depaware tests.
package pvehci_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// walkRepo calls fn for every regular file of the repository, skipping VCS
// metadata and build output.
func walkRepo(t *testing.T, fn func(path string, d fs.DirEntry)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		fn(path, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every package says what it is for, in exactly one place.
func TestEveryPackageHasOneDocComment(t *testing.T) {
	docs := map[string][]string{} // dir -> files with a package doc
	pkgs := map[string]bool{}
	walkRepo(t, func(path string, _ fs.DirEntry) {
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("parsing %s: %v", path, err)
			return
		}
		dir := filepath.Dir(path)
		pkgs[dir] = true
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			docs[dir] = append(docs[dir], path)
		}
	})
	if len(pkgs) == 0 {
		t.Fatal("found no Go packages; is the test running at the repository root?")
	}
	for dir := range pkgs {
		switch n := len(docs[dir]); {
		case n == 0:
			t.Errorf("package %s has no package doc comment; add one (in doc.go or the main file) that says what the package is for", dir)
		case n > 1:
			t.Errorf("package %s has package docs in %d files (%s); keep exactly one", dir, n, strings.Join(docs[dir], ", "))
		}
	}
}

// The project speaks of the project only: no path of a developer's or CI's
// machine may end up in the tree.
func TestNoMachinePathsInTree(t *testing.T) {
	// Assembled so that this file does not match itself.
	machinePath := regexp.MustCompile(`(^|[\s"'(=:,])/(` + strings.Join([]string{"wo" + "rk", "ho" + "me", "Us" + "ers", "ro" + "ot/go", "ro" + "ot/\\.cache"}, "|") + `)/`)
	walkRepo(t, func(path string, d fs.DirEntry) {
		info, err := d.Info()
		if err != nil || info.Size() > 4<<20 {
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("reading %s: %v", path, err)
			return
		}
		if strings.IndexByte(string(data), 0) >= 0 {
			return // binary
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			if m := machinePath.FindString(sc.Text()); m != "" {
				t.Errorf("%s:%d names a machine path (%q); use a path relative to the repository or t.TempDir()", path, n, strings.TrimSpace(m))
			}
		}
	})
}

// Adding a direct dependency is a deliberate, reviewed change: it must be
// added to testdata/direct-deps.txt in the same commit, with its reason.
func TestDirectDependenciesAreReviewed(t *testing.T) {
	got := directRequires(t, "go.mod")
	want := map[string]string{}
	f, err := os.Open(filepath.Join("testdata", "direct-deps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			t.Errorf("testdata/direct-deps.txt: %q must read `module version reason...`", line)
			continue
		}
		want[fields[0]] = fields[1]
	}
	for mod, ver := range got {
		switch w, ok := want[mod]; {
		case !ok:
			t.Errorf("go.mod requires %s %s directly, but testdata/direct-deps.txt does not list it; add it with the reason it is needed", mod, ver)
		case w != ver:
			t.Errorf("go.mod requires %s %s, testdata/direct-deps.txt says %s; update the list (and go-deps research) deliberately", mod, ver, w)
		}
	}
	var stale []string
	for mod := range want {
		if _, ok := got[mod]; !ok {
			stale = append(stale, mod)
		}
	}
	sort.Strings(stale)
	for _, mod := range stale {
		t.Errorf("testdata/direct-deps.txt lists %s, which go.mod no longer requires directly; remove it", mod)
	}
}

func directRequires(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	inBlock := false
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if strings.Contains(line, "// indirect") {
			continue
		}
		if fields := strings.Fields(line); len(fields) >= 2 {
			out[fields[0]] = fields[1]
		}
	}
	return out
}
