package validate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// corosyncKeyBytes is the size corosync-keygen writes; corosync refuses keys
// under 1024 bits.
const corosyncKeyBytes = 256

// corosyncLogging is appended to the checked copy of corosync.conf. Errors
// found after the config is loaded go wherever its logging section says,
// and with to_stderr: no corosync -t exits 8 without a word. The syslog and
// logfile targets are switched off so a check never writes to the host's
// logs. Appending keeps the line numbers of parse errors right.
const corosyncLogging = "\nlogging {\n\tto_stderr: yes\n\tto_syslog: no\n\tto_logfile: no\n}\n"

// corosyncLine splits a corosync log line: optional timestamp, level,
// subsystem, message.
var corosyncLine = regexp.MustCompile(`^(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d(?:\.\d+)? )?(\w+)\s+\[\s*\w+\s*\] (.*)$`)

// corosyncNoise matches messages that say nothing about the config: the
// exit line repeats the exit code, and the memlock warning depends on the
// machine's limits.
var corosyncNoise = regexp.MustCompile(`^(Corosync Cluster Engine exiting (normally|with status \d+ at .*)|Could not increase RLIMIT_MEMLOCK.*)$`)

// CorosyncNode is one node of a corosync.conf nodelist.
type CorosyncNode struct {
	Name   string
	NodeID string
	// Addrs are the ring addresses, ring0_addr first.
	Addrs []string
}

// Corosync runs corosync -t -c path as the node whose ring addresses are
// addrs: in fresh network and mount namespaces where addrs are on lo, a
// generated authkey is bind-mounted over /etc/corosync, and nothing can
// reach the network. It needs root. A real corosync is never started.
func Corosync(ctx context.Context, path string, addrs ...string) error {
	return corosyncCheck(ctx, path, "as "+strings.Join(addrs, ", "), addrs)
}

// CorosyncAllNodes runs [Corosync] once as every node of the file's
// nodelist, with that node's ring addresses. The error joins the failures
// of all nodes.
func CorosyncAllNodes(ctx context.Context, path string) error {
	nodes, err := CorosyncNodes(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nodes {
		subject := fmt.Sprintf("node %s: %s", n.Name, strings.Join(n.Addrs, ", "))
		errs = append(errs, corosyncCheck(ctx, path, subject, n.Addrs))
	}
	return errors.Join(errs...)
}

// CorosyncNodes reads the nodelist of a corosync.conf. It is a small reader
// for the subset of the format that pvehci writes (one section header or
// key per line), enough to know whom to pretend to be; corosync itself
// judges the file.
func CorosyncNodes(path string) ([]CorosyncNode, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading corosync nodelist: %w", err)
	}
	var (
		nodes []CorosyncNode
		stack []string
		node  *CorosyncNode
		rings map[int]string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasSuffix(l, "{"):
			stack = append(stack, strings.TrimSpace(strings.TrimSuffix(l, "{")))
			if strings.Join(stack, ".") == "nodelist.node" {
				node, rings = &CorosyncNode{}, map[int]string{}
			}
		case l == "}":
			if strings.Join(stack, ".") == "nodelist.node" && node != nil {
				idx := make([]int, 0, len(rings))
				for i := range rings {
					idx = append(idx, i)
				}
				sort.Ints(idx)
				for _, i := range idx {
					node.Addrs = append(node.Addrs, rings[i])
				}
				nodes = append(nodes, *node)
				node = nil
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case node != nil:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case k == "name":
				node.Name = v
			case k == "nodeid":
				node.NodeID = v
			case strings.HasPrefix(k, "ring") && strings.HasSuffix(k, "_addr"):
				if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(k, "ring"), "_addr")); err == nil {
					rings[i] = v
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading corosync nodelist of %s: %w", path, err)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("reading corosync nodelist: no nodes in %s", path)
	}
	for i := range nodes {
		if nodes[i].Name == "" {
			nodes[i].Name = "nodeid " + nodes[i].NodeID
		}
	}
	return nodes, nil
}

func corosyncCheck(ctx context.Context, path, subject string, addrs []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	const check = "corosync -t"
	tools, err := lookTools("corosync", "unshare", "sh", "ip", "mount")
	if err != nil {
		return err
	}
	if err := requireRoot(check); err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("running corosync -t on %s: no node addresses to pretend to be", path)
	}
	prefixes := make([]string, len(addrs))
	for i, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("running corosync -t on %s: node address %q is not an IP address (host names cannot be faked)", path, a)
		}
		prefixes[i] = netip.PrefixFrom(ip, ip.BitLen()).String()
	}
	abs, err := absFiles([]string{path})
	if err != nil {
		return fmt.Errorf("running corosync -t: %w", err)
	}

	dir, err := os.MkdirTemp("", "pvehci-validate-corosync-")
	if err != nil {
		return fmt.Errorf("preparing corosync -t: %w", err)
	}
	defer os.RemoveAll(dir)
	etc, conf, err := corosyncTree(dir, abs[0])
	if err != nil {
		return fmt.Errorf("preparing corosync -t: %w", err)
	}

	// corosync keeps a blackbox in /dev/shm; a private tmpfs there means
	// a killed run leaves nothing behind.
	script := nsScript(
		`etc=$1 conf=$2`,
		`shift 2`,
		`ip link set lo up || fail "ip link set lo up failed"`,
		`for a; do ip addr add "$a" dev lo || fail "adding $a to lo failed"; done`,
		`mount --bind "$etc" /etc/corosync || fail "bind-mounting $etc over /etc/corosync failed"`,
		`mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mounting a tmpfs on /dev/shm failed"`,
		`exec corosync -t -c "$conf"`,
	)
	args := append([]string{etc, conf}, prefixes...)
	c := command{argv: nsCommand(tools[1], tools[2], script, args...)}
	out, err := run(ctx, c)
	if err != nil {
		return err
	}
	var complaints []string
	for _, l := range lines(out.stderr) {
		level, msg := "", l
		if m := corosyncLine.FindStringSubmatch(l); m != nil {
			level, msg = m[1], m[2]
		}
		switch {
		case corosyncNoise.MatchString(msg):
			continue
		case level == "notice" || level == "info" || level == "debug" || level == "trace":
			continue
		}
		complaints = append(complaints, strings.ReplaceAll(msg, conf, path))
	}
	if out.code != 0 || len(complaints) > 0 {
		return &RejectedError{Check: check, Subject: subject, Files: []string{path}, Command: c.String(), ExitCode: out.code, Lines: complaints}
	}
	return nil
}

// corosyncTree writes dir/etc/authkey (the stand-in for /etc/corosync) and
// dir/conf/NAME, a copy of the config with the logging block appended. The
// copy keeps the file's base name because corosync's parser errors name it.
func corosyncTree(dir, src string) (etc, conf string, err error) {
	etc = filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		return "", "", err
	}
	key := make([]byte, corosyncKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return "", "", fmt.Errorf("generating authkey: %w", err)
	}
	if err := os.WriteFile(filepath.Join(etc, "authkey"), key, 0o400); err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", "", err
	}
	if err := os.Mkdir(filepath.Join(dir, "conf"), 0o755); err != nil {
		return "", "", err
	}
	conf = filepath.Join(dir, "conf", filepath.Base(src))
	data = append(data, corosyncLogging...)
	if err := os.WriteFile(conf, data, 0o644); err != nil {
		return "", "", err
	}
	return etc, conf, nil
}
