package hostos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/pvehci/pvehci/bootstrap"
)

// newNamespace gives the test a fresh, empty network namespace and a
// netlink handle in it. The namespace is anonymous: it disappears when the
// handle and the namespace fd are closed, so a failed test leaves nothing
// behind.
func newNamespace(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
	}
	type result struct {
		ns  netns.NsHandle
		h   *netlink.Handle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// netns.New moves the calling thread into the new namespace. The
		// thread stays locked to this goroutine, which then exits, so Go
		// destroys the thread instead of reusing it in the wrong namespace
		// should switching back fail.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("getting the current namespace: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			ch <- result{err: fmt.Errorf("creating a namespace: %w", err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			ch <- result{err: fmt.Errorf("switching back: %w", err)}
			return
		}
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			ns.Close()
			ch <- result{err: fmt.Errorf("opening a netlink handle in the namespace: %w", err)}
			return
		}
		ch <- result{ns: ns, h: h}
	}()
	r := <-ch
	if r.err != nil {
		if errors.Is(r.err, syscall.EPERM) {
			t.Skipf("no permission for network namespaces here: %v", r.err)
		}
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		r.h.Close()
		r.ns.Close()
	})
	return r.h
}

// skipUnsupported skips when the kernel lacks the link type (this
// sandbox's kernel has no dummy or bonding driver and no modules).
func skipUnsupported(t *testing.T, kind string, err error) {
	t.Helper()
	if errors.Is(err, syscall.EOPNOTSUPP) {
		t.Skipf("kernel does not support %s links (no driver, and modprobe finds no module): %v", kind, err)
	}
}

func mustAdd(t *testing.T, h *netlink.Handle, l netlink.Link) {
	t.Helper()
	if err := h.LinkAdd(l); err != nil {
		t.Fatalf("adding %s link %s: %v", l.Type(), l.Attrs().Name, err)
	}
}

func mustUp(t *testing.T, h *netlink.Handle, names ...string) {
	t.Helper()
	for _, n := range names {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatalf("setting %s up: %v", n, err)
		}
	}
}

func mustAddr(t *testing.T, h *netlink.Handle, name, cidr string) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	// No DAD, so the address is usable at once and nothing depends on
	// timing; the test reads addresses, not their state.
	a.Flags = syscall.IFA_F_NODAD
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, name, err)
	}
}

func attrs(name string) netlink.LinkAttrs {
	la := netlink.NewLinkAttrs()
	la.Name = name
	return la
}

// waitUp polls until the link reports Up: operational state follows
// carrier with a short delay after LinkSetUp.
func waitUp(t *testing.T, n Netlink, name string) bootstrap.Link {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := n.Link(ctx, name)
		if err != nil {
			t.Fatalf("Link(%s): %v", name, err)
		}
		if l.Up {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never came up: %+v", name, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNetlinkBridgeAndVeth(t *testing.T) {
	h := newNamespace(t)
	n := Netlink{Handle: h}
	ctx := context.Background()

	la := attrs("br0")
	la.MTU = 9000
	mustAdd(t, h, &netlink.Bridge{LinkAttrs: la})
	la = attrs("v0")
	la.MTU = 9000
	mustAdd(t, h, &netlink.Veth{LinkAttrs: la, PeerName: "v1"})
	v1, err := h.LinkByName("v1")
	if err != nil {
		t.Fatal(err)
	}
	// The peer inherits v0's MTU; a different one shows MTU is per link.
	if err := h.LinkSetMTU(v1, 1500); err != nil {
		t.Fatal(err)
	}
	br, err := h.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	v0, err := h.LinkByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetMaster(v0, br); err != nil {
		t.Fatal(err)
	}
	mustAddr(t, h, "br0", "10.20.30.1/24")
	mustAddr(t, h, "br0", "2001:db8::1/64")
	mustAddr(t, h, "v1", "192.0.2.7/32")
	mustUp(t, h, "lo", "v1", "v0", "br0")

	gotBr := waitUp(t, n, "br0")
	wantBr := bootstrap.Link{
		Name: "br0", Kind: "bridge", Up: true, MTU: 9000, LinkLayer: "ether",
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.20.30.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
	}
	assertLink(t, gotBr, wantBr)

	gotV0 := waitUp(t, n, "v0")
	assertLink(t, gotV0, bootstrap.Link{Name: "v0", Kind: "veth", Up: true, Master: "br0", MTU: 9000, LinkLayer: "ether"})
	gotV1 := waitUp(t, n, "v1")
	assertLink(t, gotV1, bootstrap.Link{
		Name: "v1", Kind: "veth", Up: true, MTU: 1500, LinkLayer: "ether",
		Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32")},
	})
	lo, err := n.Link(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	assertLink(t, lo, bootstrap.Link{
		Name: "lo", Kind: "device", Up: true, MTU: 65536, LinkLayer: "loopback",
		Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")},
	})

	t.Run("down", func(t *testing.T) {
		v1, err := h.LinkByName("v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetDown(v1); err != nil {
			t.Fatal(err)
		}
		l, err := n.Link(ctx, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if l.Up {
			t.Errorf("v1 is administratively down but Up: %+v", l)
		}
		// v0 is administratively up but its peer is down: no carrier,
		// operstate lowerlayerdown, so not Up either.
		deadline := time.Now().Add(10 * time.Second)
		for {
			l, err := n.Link(ctx, "v0")
			if err != nil {
				t.Fatal(err)
			}
			if !l.Up {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("v0 without carrier still Up: %+v", l)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Leave both settled for the subtests that compare snapshots.
		mustUp(t, h, "v1")
		waitUp(t, n, "v0")
		waitUp(t, n, "v1")
	})

	t.Run("Links", func(t *testing.T) {
		all, err := n.Links(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range all {
			names = append(names, l.Name)
			one, err := n.Link(ctx, l.Name)
			if err != nil {
				t.Fatalf("Link(%s): %v", l.Name, err)
			}
			assertLink(t, l, one)
		}
		slices.Sort(names)
		if want := []string{"br0", "lo", "v0", "v1"}; !slices.Equal(names, want) {
			t.Errorf("Links names = %v, want %v", names, want)
		}
	})

	t.Run("missing", func(t *testing.T) {
		_, err := n.Link(ctx, "bond0")
		if !errors.Is(err, bootstrap.ErrNoLink) {
			t.Fatalf("Link(bond0) = %v, want ErrNoLink", err)
		}
		if got, want := err.Error(), "network interface bond0: no such network interface"; got != want {
			t.Errorf("error = %q, want %q", got, want)
		}
	})
}

func TestNetlinkDummy(t *testing.T) {
	h := newNamespace(t)
	n := Netlink{Handle: h}
	err := h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs("dummy0")})
	skipUnsupported(t, "dummy", err)
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, h, "dummy0", "198.51.100.1/24")
	mustUp(t, h, "dummy0")
	// A dummy link's operstate stays unknown: Up must accept that.
	got := waitUp(t, n, "dummy0")
	assertLink(t, got, bootstrap.Link{
		Name: "dummy0", Kind: "dummy", Up: true, MTU: 1500, LinkLayer: "ether",
		Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")},
	})
}

func TestNetlinkBond(t *testing.T) {
	h := newNamespace(t)
	n := Netlink{Handle: h}
	bond := netlink.NewLinkBond(attrs("bond0"))
	bond.Mode = netlink.BOND_MODE_ACTIVE_BACKUP
	err := h.LinkAdd(bond)
	skipUnsupported(t, "bond", err)
	if err != nil {
		t.Fatal(err)
	}
	// Dummy slaves as the brief asks, veth ones where the kernel has no
	// dummy driver: either is a stand-in for a NIC.
	for i, name := range []string{"s0", "s1"} {
		err := h.LinkAdd(&netlink.Dummy{LinkAttrs: attrs(name)})
		if errors.Is(err, syscall.EOPNOTSUPP) {
			err = h.LinkAdd(&netlink.Veth{LinkAttrs: attrs(name), PeerName: fmt.Sprintf("p%d", i)})
			mustUp(t, h, fmt.Sprintf("p%d", i))
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetMaster(s, bond); err != nil {
			t.Fatalf("enslaving %s: %v", name, err)
		}
	}
	mustAddr(t, h, "bond0", "10.1.2.3/24")
	mustUp(t, h, "s0", "s1", "bond0")
	got := waitUp(t, n, "bond0")
	if got.Kind != "bond" || !slices.Contains(got.Addrs, netip.MustParsePrefix("10.1.2.3/24")) {
		t.Errorf("bond0 = %+v", got)
	}
	for _, name := range []string{"s0", "s1"} {
		s, err := n.Link(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Master != "bond0" {
			t.Errorf("%s.Master = %q, want bond0", name, s.Master)
		}
	}
}

// TestNetlinkHostNamespace reads this process's own namespace through the
// package-level functions (nil Handle); it only reads.
func TestNetlinkHostNamespace(t *testing.T) {
	all, err := Netlink{}.Links(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no links at all, not even lo")
	}
	l, err := Netlink{}.Link(context.Background(), all[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != all[0].Name || l.Kind != all[0].Kind {
		t.Errorf("Link(%s) = %+v, Links has %+v", all[0].Name, l, all[0])
	}
	if _, err := (Netlink{}).Link(context.Background(), "nosuchlink9"); !errors.Is(err, bootstrap.ErrNoLink) {
		t.Errorf("Link(nosuchlink9) = %v, want ErrNoLink", err)
	}
}

func TestDumpRetriesInterrupted(t *testing.T) {
	ctx := context.Background()
	calls := 0
	got, err := dump(ctx, func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{1}, fmt.Errorf("dumping: %w", netlink.ErrDumpInterrupted)
		}
		return []int{1, 2}, nil
	})
	if err != nil || !slices.Equal(got, []int{1, 2}) || calls != 3 {
		t.Errorf("dump = %v, %v after %d calls; want [1 2], nil after 3", got, err, calls)
	}

	calls = 0
	got, err = dump(ctx, func() ([]int, error) {
		calls++
		return []int{1}, netlink.ErrDumpInterrupted
	})
	if !errors.Is(err, netlink.ErrDumpInterrupted) || got != nil || calls != dumpAttempts {
		t.Errorf("always interrupted: dump = %v, %v after %d calls", got, err, calls)
	}

	calls = 0
	boom := errors.New("boom")
	if _, err := dump(ctx, func() ([]int, error) { calls++; return nil, boom }); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("other error: %v after %d calls, want boom after 1", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dump(cctx, func() ([]int, error) { t.Error("called with a cancelled context"); return nil, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestPrefixes(t *testing.T) {
	mk := func(cidr string) netlink.Addr {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return netlink.Addr{IPNet: n}
	}
	v4in6 := mk("10.0.0.5/16")
	v4in6.IP = v4in6.IP.To16()
	got := prefixes([]netlink.Addr{mk("fe80::1/64"), v4in6, mk("169.254.1.1/16"), mk("fd00::5/64"), {}})
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.5/16"),
		netip.MustParsePrefix("169.254.1.1/16"),
		netip.MustParsePrefix("fd00::5/64"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("prefixes = %v, want %v", got, want)
	}
}

func assertLink(t *testing.T, got, want bootstrap.Link) {
	t.Helper()
	for _, p := range got.Addrs {
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			t.Errorf("%s: link-local %v reported", got.Name, p)
		}
	}
	ga, wa := slices.Clone(got.Addrs), slices.Clone(want.Addrs)
	slices.SortFunc(ga, comparePrefix)
	slices.SortFunc(wa, comparePrefix)
	got.Addrs, want.Addrs = ga, wa
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Link(%s):\n got  %+v\n want %+v", want.Name, got, want)
	}
}

func comparePrefix(a, b netip.Prefix) int {
	return strings.Compare(a.String(), b.String())
}
