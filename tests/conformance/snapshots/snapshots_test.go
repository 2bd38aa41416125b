// Package main runs containerd's own snapshotter test suite
// (github.com/containerd/containerd/snapshots/testsuite, 1.6) against ctrd's
// snapshotters as a proxy snapshotter sees them: every case starts its own
// `ctrd serve-snapshotter` on the case's root and talks to it only through
// containerd's proxy client (snapshots/proxy) over the unix socket, exactly as
// a daemon with a `[proxy_plugins.x] type = "snapshot"` entry would.
//
// It is built as a test binary (`go test -c`) because the suite takes a
// *testing.T. Run it as root (the suite mounts what the snapshotter returns):
//
//	snapshots.test -ctrd /path/to/ctrd [-snapshotters overlayfs,native] [-test.v]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

var (
	ctrdBinary   = flag.String("ctrd", "", "path of the ctrd binary to serve the snapshotters")
	snapshotters = flag.String("snapshotters", "overlayfs,native", "comma-separated snapshotters to test")
)

// Bounds on waiting for ctrd: generous for a loaded 2-core machine, and still
// short enough that a hung server fails the case rather than the whole run.
const (
	startLimit = 30 * time.Second
	stopLimit  = 10 * time.Second
)

func TestSnapshotterSuite(t *testing.T) {
	if *ctrdBinary == "" {
		t.Fatal("-ctrd is required")
	}
	if os.Getuid() != 0 {
		t.Skip("the snapshotter suite mounts snapshots: it needs root")
	}
	for _, name := range strings.Split(*snapshotters, ",") {
		name := name
		t.Run(name, func(t *testing.T) {
			testsuite.SnapshotterSuite(t, name, func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
				return startServer(ctx, name, root)
			})
		})
	}
}

// server is one `ctrd serve-snapshotter` process and the connection to it.
type server struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error
	conn    *grpc.ClientConn
	logPath string
}

// startServer serves snapshotter `name` on root with a fresh ctrd and returns
// containerd's proxy snapshotter connected to it. The socket and ctrd's log
// live beside root (in the case's temporary dir) so that root holds only what
// the snapshotter itself writes.
func startServer(ctx context.Context, name, root string) (snapshots.Snapshotter, func() error, error) {
	dir := filepath.Dir(root)
	socket := filepath.Join(dir, "ctrd.sock")
	s := &server{logPath: filepath.Join(dir, "ctrd.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, nil, err
	}
	defer logFile.Close()

	s.cmd = exec.Command(*ctrdBinary, "serve-snapshotter", "--snapshotter", name, "--root", root,
		"--address", socket, "--log-level", "debug")
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	// A killed test binary (e.g. on ctest's timeout) must not leave servers behind.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting ctrd: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitForSocket(socket); err != nil {
		s.stop(ctx)
		return nil, nil, err
	}
	s.conn, err = grpc.Dial(dialer.DialAddress(socket), grpc.WithInsecure(),
		grpc.WithContextDialer(dialer.ContextDialer))
	if err != nil {
		s.stop(ctx)
		return nil, nil, fmt.Errorf("dialing %s: %w", socket, err)
	}
	return proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(s.conn), name), func() error { return s.stop(ctx) }, nil
}

// waitForSocket returns once ctrd accepts connections on socket, or an error
// when ctrd exits first or takes longer than startLimit. The socket file alone
// is not enough: it exists from bind(), and connecting before listen() is
// refused, which the proxy client reports as Unavailable on its first call.
func (s *server) waitForSocket(socket string) error {
	deadline := time.Now().Add(startLimit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.Dial("unix", socket)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ctrd did not accept connections on %s within %v (%v)\n%s", socket, startLimit, err,
				s.log())
		}
		select {
		case <-s.exited:
			return fmt.Errorf("ctrd exited at startup (%v)\n%s", s.waitErr, s.log())
		case <-tick.C:
		}
	}
}

// stop closes the connection, ends ctrd with SIGTERM (SIGKILL after
// stopLimit) and fails unless ctrd shut down cleanly. ctrd's log goes to the
// case's test log, which `go test` prints only for failed cases or with -v.
func (s *server) stop(ctx context.Context) error {
	var errs []error
	if s.conn != nil {
		if err := s.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the connection: %w", err))
		}
	}
	select {
	case <-s.exited:
		errs = append(errs, fmt.Errorf("ctrd exited before the case ended (%v)", s.waitErr))
	default:
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			errs = append(errs, fmt.Errorf("signalling ctrd: %w", err))
		}
		select {
		case <-s.exited:
			if s.waitErr != nil {
				errs = append(errs, fmt.Errorf("ctrd on SIGTERM: %w", s.waitErr))
			}
		case <-time.After(stopLimit):
			_ = s.cmd.Process.Kill()
			<-s.exited
			errs = append(errs, fmt.Errorf("ctrd still running %v after SIGTERM; killed", stopLimit))
		}
	}
	for _, line := range strings.Split(s.log(), "\n") {
		log.G(ctx).Debug("ctrd: " + line)
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (s *server) log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no ctrd log: %v)", err)
	}
	return string(bytes.TrimSpace(b))
}
