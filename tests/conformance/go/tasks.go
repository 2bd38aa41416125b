// The "tasks" section: runs busybox containers through the client's
// container/task API (runtime v2 with the runc shim) and checks exit codes,
// output, process lifecycle, error kinds, events, pause/resume and metrics.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/events"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	ptypes "github.com/gogo/protobuf/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The snapshotter the image is unpacked into; containers use the client's
// default, which is this one on Linux.
const taskSnapshotter = "overlayfs"

func (s *suite) testTasks(ctx context.Context) {
	if s.imageTar == "" {
		fmt.Println("SKIP tasks: no -image-tar given (run.sh builds a busybox OCI tarball with mkimage.py)")
		return
	}
	nsT := s.ns("tasks")
	ctx = namespaces.WithNamespace(ctx, nsT)
	// Deferred first, so it runs after every container's own cleanup.
	defer s.cleanupTasksNamespace(nsT)

	image, err := s.importBusybox(ctx)
	if !s.check("tasks/Import and Unpack the busybox image", err) {
		return
	}

	s.taskLifecycle(ctx, image)
	s.taskKill(ctx, image)
	s.taskExec(ctx, image)
	s.taskErrors(ctx, image)
	s.taskEvents(ctx, image)
	s.taskPauseMetrics(ctx, image)
}

func (s *suite) importBusybox(ctx context.Context) (containerd.Image, error) {
	f, err := os.Open(s.imageTar)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := s.client.Import(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("Import: %s", describe(err))
	}
	if len(imgs) == 0 {
		return nil, errors.New("Import created no image")
	}
	image := containerd.NewImage(s.client, imgs[0])
	if err := image.Unpack(ctx, taskSnapshotter); err != nil {
		return nil, fmt.Errorf("Unpack %s: %s", imgs[0].Name, describe(err))
	}
	unpacked, err := image.IsUnpacked(ctx, taskSnapshotter)
	if err != nil {
		return nil, fmt.Errorf("IsUnpacked: %s", describe(err))
	}
	return image, expect(unpacked, "IsUnpacked is false after Unpack")
}

// newContainer creates a container on its own snapshot of image, with the
// image's config amended by specOpts. The returned cleanup removes any task
// and the container, and always is safe to defer.
func (s *suite) newContainer(ctx context.Context, id string, image containerd.Image, specOpts ...oci.SpecOpts) (containerd.Container, func(), error) {
	specOpts = append([]oci.SpecOpts{oci.WithImageConfig(image)}, specOpts...)
	c, err := s.client.NewContainer(ctx, id,
		containerd.WithNewSnapshot(id+"-snap", image),
		containerd.WithNewSpec(specOpts...))
	if err != nil {
		return nil, func() {}, fmt.Errorf("NewContainer %s: %s", id, describe(err))
	}
	ns, _ := namespaces.Namespace(ctx)
	return c, func() { s.removeContainer(ns, c) }, nil
}

// removeContainer runs on a context of its own, so it still cleans up after a
// check ran out the run's deadline.
func (s *suite) removeContainer(ns string, c containerd.Container) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), waitLimit)
	defer cancel()
	name := "tasks/cleanup " + c.ID()
	t, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		// A frozen task cannot die from SIGKILL until thawed.
		if st, err := t.Status(ctx); err == nil && st.Status == containerd.Paused {
			_ = t.Resume(ctx)
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			s.check(name+" task", errors.New(describe(err)))
		}
	case !errdefs.IsNotFound(err):
		s.check(name+" load task", errors.New(describe(err)))
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		s.check(name+" container", errors.New(describe(err)))
	}
}

// cleanupTasksNamespace removes the image, its content and its snapshots
// (a daemon without garbage collection keeps them) and then the namespace.
func (s *suite) cleanupTasksNamespace(ns string) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), waitLimit)
	defer cancel()
	fail := func(what string, err error) { s.check("tasks/cleanup "+what, errors.New(describe(err))) }

	is := s.client.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		fail("image list", err)
	}
	for _, img := range imgs {
		if err := is.Delete(ctx, img.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
			fail("image "+img.Name, err)
		}
	}

	var blobs []content.Info
	if err := s.cs.Walk(ctx, func(info content.Info) error {
		blobs = append(blobs, info)
		return nil
	}); err != nil {
		fail("content walk", err)
	}
	for _, b := range blobs {
		if err := s.cs.Delete(ctx, b.Digest); err != nil && !errdefs.IsNotFound(err) {
			fail("content "+b.Digest.String(), err)
		}
	}

	// Snapshots go leaves first: a parent cannot be removed before its children.
	sn := s.client.SnapshotService(taskSnapshotter)
	for round := 0; ; round++ {
		var infos []snapshots.Info
		if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			infos = append(infos, info)
			return nil
		}); err != nil {
			fail("snapshot walk", err)
			break
		}
		if len(infos) == 0 {
			break
		}
		if round > len(infos)+1 {
			fail("snapshots", fmt.Errorf("%d snapshots left", len(infos)))
			break
		}
		parents := map[string]bool{}
		for _, info := range infos {
			parents[info.Parent] = true
		}
		for _, info := range infos {
			if parents[info.Name] {
				continue
			}
			if err := sn.Remove(ctx, info.Name); err != nil && !errdefs.IsNotFound(err) {
				fail("snapshot "+info.Name, err)
			}
		}
	}

	if err := s.client.NamespaceService().Delete(ctx, ns); err != nil && !errdefs.IsNotFound(err) {
		fail("namespace "+ns, err)
	}
}

// waitExit reads one exit status from statusC, bounded by waitLimit.
func waitExit(ctx context.Context, statusC <-chan containerd.ExitStatus) (containerd.ExitStatus, error) {
	select {
	case st := <-statusC:
		return st, st.Error()
	case <-time.After(waitLimit):
		return containerd.ExitStatus{}, errors.New("no exit status within the time limit")
	case <-ctx.Done():
		return containerd.ExitStatus{}, ctx.Err()
	}
}

// startSleeper creates and starts a `sleep 1000` task in a new container.
func (s *suite) startSleeper(ctx context.Context, id string, image containerd.Image, specOpts ...oci.SpecOpts) (containerd.Container, containerd.Task, func(), error) {
	c, cleanup, err := s.newContainer(ctx, id, image, append(specOpts, oci.WithProcessArgs("sleep", "1000"))...)
	if err != nil {
		return nil, nil, cleanup, err
	}
	t, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		return nil, nil, cleanup, fmt.Errorf("NewTask: %s", describe(err))
	}
	if err := t.Start(ctx); err != nil {
		return nil, nil, cleanup, fmt.Errorf("Start: %s", describe(err))
	}
	return c, t, cleanup, nil
}

func wantStatus(ctx context.Context, t containerd.Process, want containerd.ProcessStatus) error {
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("Status: %s", describe(err))
	}
	return expect(st.Status == want, "status %q, want %q", st.Status, want)
}

func (s *suite) taskLifecycle(ctx context.Context, image containerd.Image) {
	c, cleanup, err := s.newContainer(ctx, "life", image, oci.WithProcessArgs("sh", "-c", "echo out; exit 7"))
	defer cleanup()
	if !s.check("tasks/NewContainer with a new snapshot and spec", err) {
		return
	}

	var stdout, stderr bytes.Buffer
	t, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if !s.check("tasks/NewTask", errOrNil(err)) {
		return
	}
	s.check("tasks/new task is Created", wantStatus(ctx, t, containerd.Created))
	statusC, err := t.Wait(ctx)
	if !s.check("tasks/Wait before Start", errOrNil(err)) {
		return
	}
	if !s.check("tasks/Start", errOrNil(t.Start(ctx))) {
		return
	}
	s.check("tasks/exit status from Wait is the process's exit code", func() error {
		st, err := waitExit(ctx, statusC)
		if err != nil {
			return err
		}
		if st.ExitTime().IsZero() {
			return errors.New("zero exit time")
		}
		return expect(st.ExitCode() == 7, "exit code %d, want 7", st.ExitCode())
	}())
	s.check("tasks/Status after exit is Stopped with its exit code", func() error {
		st, err := t.Status(ctx)
		if err != nil {
			return fmt.Errorf("Status: %s", describe(err))
		}
		return expect(st.Status == containerd.Stopped && st.ExitStatus == 7, "status %+v", st)
	}())
	s.check("tasks/Delete returns the exit status", func() error {
		st, err := t.Delete(ctx)
		if err != nil {
			return fmt.Errorf("Delete: %s", describe(err))
		}
		return expect(st.ExitCode() == 7, "exit code %d, want 7", st.ExitCode())
	}())
	// Delete has waited for the output copiers, so the buffers are complete.
	s.check("tasks/stdout reaches the client's stream", expect(stdout.String() == "out\n", "stdout %q, want %q", stdout.String(), "out\n"))
	s.check("tasks/nothing on stderr", expect(stderr.Len() == 0, "stderr %q", stderr.String()))
	s.check("tasks/container Delete WithSnapshotCleanup", func() error {
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			return errors.New(describe(err))
		}
		_, err := s.client.SnapshotService(taskSnapshotter).Stat(ctx, "life-snap")
		return wantErr(err, errdefs.IsNotFound, "snapshot gone (NotFound)")
	}())
}

// errOrNil turns an error into one that shows its gRPC code.
func errOrNil(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(describe(err))
}

func (s *suite) taskKill(ctx context.Context, image containerd.Image) {
	// In a PID namespace of its own sleep would be the namespace's init, and
	// the kernel drops SIGTERM to an init that installed no handler (busybox
	// sleep installs none), with containerd as with any runtime; in the host's
	// PID namespace it dies of the signal.
	_, t, cleanup, err := s.startSleeper(ctx, "kill", image, oci.WithHostNamespace(specs.PIDNamespace))
	defer cleanup()
	if !s.check("tasks/start a sleep task", err) {
		return
	}
	s.check("tasks/started task is Running", wantStatus(ctx, t, containerd.Running))
	s.check("tasks/Pids contains the task's pid", func() error {
		if t.Pid() == 0 {
			return errors.New("task pid is 0")
		}
		pids, err := t.Pids(ctx)
		if err != nil {
			return fmt.Errorf("Pids: %s", describe(err))
		}
		for _, p := range pids {
			if p.Pid == t.Pid() {
				return nil
			}
		}
		return fmt.Errorf("pid %d not in %+v", t.Pid(), pids)
	}())
	statusC, err := t.Wait(ctx)
	if !s.check("tasks/Wait on a running task", errOrNil(err)) {
		return
	}
	s.check("tasks/Kill SIGTERM ends it with exit status 143", func() error {
		if err := t.Kill(ctx, syscall.SIGTERM); err != nil {
			return fmt.Errorf("Kill: %s", describe(err))
		}
		st, err := waitExit(ctx, statusC)
		if err != nil {
			return err
		}
		return expect(st.ExitCode() == 143, "exit code %d, want 143", st.ExitCode())
	}())
	s.check("tasks/Delete a killed task", func() error {
		st, err := t.Delete(ctx)
		if err != nil {
			return fmt.Errorf("Delete: %s", describe(err))
		}
		return expect(st.ExitCode() == 143, "exit code %d, want 143", st.ExitCode())
	}())
}

func (s *suite) taskExec(ctx context.Context, image containerd.Image) {
	c, t, cleanup, err := s.startSleeper(ctx, "exec", image)
	defer cleanup()
	if !s.check("tasks/start a sleep task for exec", err) {
		return
	}
	spec, err := c.Spec(ctx)
	if !s.check("tasks/container Spec", errOrNil(err)) {
		return
	}

	// Both output streams: the runc shim fails to start the copy when only
	// one of stdout/stderr is given ("opening file \"\" failed").
	var out, errOut bytes.Buffer
	p, err := t.Exec(ctx, "e1", &specs.Process{
		Args: []string{"sh", "-c", "echo inside; exit 5"},
		Cwd:  "/",
		Env:  spec.Process.Env,
	}, cio.NewCreator(cio.WithStreams(nil, &out, &errOut)))
	if !s.check("tasks/Exec", errOrNil(err)) {
		return
	}
	statusC, err := p.Wait(ctx)
	if !s.check("tasks/exec Wait", errOrNil(err)) {
		return
	}
	if !s.check("tasks/exec Start", errOrNil(p.Start(ctx))) {
		return
	}
	s.check("tasks/exec exit status from Wait", func() error {
		st, err := waitExit(ctx, statusC)
		if err != nil {
			return err
		}
		return expect(st.ExitCode() == 5, "exit code %d, want 5", st.ExitCode())
	}())
	s.check("tasks/exec Delete returns its exit status", func() error {
		st, err := p.Delete(ctx)
		if err != nil {
			return fmt.Errorf("Delete: %s", describe(err))
		}
		return expect(st.ExitCode() == 5, "exit code %d, want 5", st.ExitCode())
	}())
	s.check("tasks/exec stdout reaches the client's stream", expect(out.String() == "inside\n", "stdout %q, want %q", out.String(), "inside\n"))
	s.check("tasks/exec nothing on stderr", expect(errOut.Len() == 0, "stderr %q", errOut.String()))
	s.check("tasks/the task keeps running after its exec ends", wantStatus(ctx, t, containerd.Running))

	taskC, err := t.Wait(ctx)
	if !s.check("tasks/Wait on the exec'd task", errOrNil(err)) {
		return
	}
	s.check("tasks/Kill SIGKILL, wait, Delete", func() error {
		if err := t.Kill(ctx, syscall.SIGKILL); err != nil {
			return fmt.Errorf("Kill: %s", describe(err))
		}
		st, err := waitExit(ctx, taskC)
		if err != nil {
			return err
		}
		if st.ExitCode() != 137 {
			return fmt.Errorf("exit code %d, want 137", st.ExitCode())
		}
		if _, err := t.Delete(ctx); err != nil {
			return fmt.Errorf("Delete: %s", describe(err))
		}
		return nil
	}())
}

func (s *suite) taskErrors(ctx context.Context, image containerd.Image) {
	c, t, cleanup, err := s.startSleeper(ctx, "errs", image)
	defer cleanup()
	if !s.check("tasks/start a sleep task for error checks", err) {
		return
	}
	s.check("tasks/NewTask when the container has a task is AlreadyExists", func() error {
		_, err := c.NewTask(ctx, cio.NullIO)
		return wantErr(err, errdefs.IsAlreadyExists, "AlreadyExists")
	}())
	s.check("tasks/Exec with an empty exec id fails", func() error {
		_, err := t.Exec(ctx, "", &specs.Process{Args: []string{"true"}, Cwd: "/"}, cio.NullIO)
		return expect(err != nil, "Exec succeeded")
	}())
	s.check("tasks/Exec with a duplicate exec id is AlreadyExists", func() error {
		p, err := t.Exec(ctx, "dup", &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/"}, cio.NullIO)
		if err != nil {
			return fmt.Errorf("first Exec: %s", describe(err))
		}
		defer func() {
			// An exec that was never started can be deleted as it is.
			_, _ = p.Delete(ctx)
		}()
		_, err = t.Exec(ctx, "dup", &specs.Process{Args: []string{"true"}, Cwd: "/"}, cio.NullIO)
		return wantErr(err, errdefs.IsAlreadyExists, "AlreadyExists")
	}())

	bare, cleanupBare, err := s.newContainer(ctx, "no-task", image, oci.WithProcessArgs("true"))
	defer cleanupBare()
	if s.check("tasks/NewContainer without a task", err) {
		s.check("tasks/LoadContainer then Task of a container without a task is NotFound", func() error {
			loaded, err := s.client.LoadContainer(ctx, bare.ID())
			if err != nil {
				return fmt.Errorf("LoadContainer: %s", describe(err))
			}
			_, err = loaded.Task(ctx, nil)
			return wantErr(err, errdefs.IsNotFound, "NotFound")
		}())
	}

	s.check("tasks/Kill on a deleted task is NotFound", func() error {
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil {
			return fmt.Errorf("Delete WithProcessKill: %s", describe(err))
		}
		return wantErr(t.Kill(ctx, syscall.SIGKILL), errdefs.IsNotFound, "NotFound")
	}())
	s.check("tasks/Delete of a deleted task is NotFound", func() error {
		_, err := t.Delete(ctx)
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
}

// taskEventContainer names the container an event from the tasks service is
// about, or "" for any other event.
func taskEventContainer(ev interface{}) string {
	switch e := ev.(type) {
	case *eventstypes.TaskCreate:
		return e.ContainerID
	case *eventstypes.TaskStart:
		return e.ContainerID
	case *eventstypes.TaskExit:
		return e.ContainerID
	case *eventstypes.TaskDelete:
		return e.ContainerID
	case *eventstypes.TaskOOM:
		return e.ContainerID
	case *eventstypes.TaskExecAdded:
		return e.ContainerID
	case *eventstypes.TaskExecStarted:
		return e.ContainerID
	case *eventstypes.TaskPaused:
		return e.ContainerID
	case *eventstypes.TaskResumed:
		return e.ContainerID
	case *eventstypes.TaskCheckpointed:
		return e.ContainerID
	}
	return ""
}

func (s *suite) taskEvents(ctx context.Context, image containerd.Image) {
	nsT, _ := namespaces.Namespace(ctx)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The sync topic only serves to learn when the daemon has registered the
	// subscriber (Subscribe returns before that), as in testEvents.
	ch, errs := s.client.Subscribe(subCtx, `topic~="/tasks/"`, `topic=="/conformance/sync"`)
	if !s.check("tasks/events subscription is active", func() error {
		wctx, wcancel := context.WithTimeout(ctx, waitLimit)
		defer wcancel()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := s.client.EventService().Publish(ctx, "/conformance/sync", &ptypes.Empty{}); err != nil {
				return fmt.Errorf("Publish: %s", describe(err))
			}
			select {
			case env := <-ch:
				if env.Topic == "/conformance/sync" {
					return nil
				}
			case err := <-errs:
				return fmt.Errorf("subscription ended: %s", describe(err))
			case <-wctx.Done():
				return errors.New("no event within the time limit")
			case <-tick.C:
			}
		}
	}()) {
		return
	}

	c, cleanup, err := s.newContainer(ctx, "events", image, oci.WithProcessArgs("true"))
	defer cleanup()
	if !s.check("tasks/NewContainer for events", err) {
		return
	}
	if !s.check("tasks/run a `true` task to completion", func() error {
		t, err := c.NewTask(ctx, cio.NullIO)
		if err != nil {
			return fmt.Errorf("NewTask: %s", describe(err))
		}
		statusC, err := t.Wait(ctx)
		if err != nil {
			return fmt.Errorf("Wait: %s", describe(err))
		}
		if err := t.Start(ctx); err != nil {
			return fmt.Errorf("Start: %s", describe(err))
		}
		st, err := waitExit(ctx, statusC)
		if err != nil {
			return err
		}
		if st.ExitCode() != 0 {
			return fmt.Errorf("exit code %d", st.ExitCode())
		}
		_, err = t.Delete(ctx)
		return errOrNil(err)
	}()) {
		return
	}

	s.check("tasks/events /tasks/create, /tasks/start, /tasks/exit, /tasks/delete in order", func() error {
		wctx, wcancel := context.WithTimeout(ctx, waitLimit)
		defer wcancel()
		lifecycle := map[string]bool{"/tasks/create": true, "/tasks/start": true, "/tasks/exit": true, "/tasks/delete": true}
		var got, seen []string
		for {
			env, err := waitEnvelope(wctx, ch, errs, func(*events.Envelope) bool { return true }, nil)
			if err != nil {
				return fmt.Errorf("%v (lifecycle events so far %v, all seen %v)", err, got, seen)
			}
			if env.Topic == "/conformance/sync" {
				continue
			}
			ev, err := decodeEvent(env)
			if err != nil {
				return fmt.Errorf("decode %s: %w", env.Topic, err)
			}
			id := taskEventContainer(ev)
			seen = append(seen, fmt.Sprintf("%s(%s)", env.Topic, id))
			if id != c.ID() || env.Namespace != nsT {
				continue
			}
			if lifecycle[env.Topic] {
				got = append(got, env.Topic)
			}
			if env.Topic == "/tasks/delete" {
				break
			}
		}
		want := "/tasks/create /tasks/start /tasks/exit /tasks/delete"
		return expect(strings.Join(got, " ") == want, "got %v, want %s (all seen %v)", got, want, seen)
	}())
}

func (s *suite) taskPauseMetrics(ctx context.Context, image containerd.Image) {
	_, t, cleanup, err := s.startSleeper(ctx, "pause", image)
	defer cleanup()
	if !s.check("tasks/start a sleep task for pause and metrics", err) {
		return
	}
	s.check("tasks/Pause makes it Paused", func() error {
		if err := t.Pause(ctx); err != nil {
			return fmt.Errorf("Pause: %s", describe(err))
		}
		return wantStatus(ctx, t, containerd.Paused)
	}())
	s.check("tasks/Resume makes it Running", func() error {
		if err := t.Resume(ctx); err != nil {
			return fmt.Errorf("Resume: %s", describe(err))
		}
		return wantStatus(ctx, t, containerd.Running)
	}())
	s.check("tasks/Metrics returns cgroups metrics", func() error {
		m, err := t.Metrics(ctx)
		if err != nil {
			return fmt.Errorf("Metrics: %s", describe(err))
		}
		if m.Data == nil {
			return errors.New("metric without data")
		}
		if m.ID != t.ID() {
			return fmt.Errorf("metric for %q, want %q", m.ID, t.ID())
		}
		return expect(strings.Contains(m.Data.TypeUrl, "cgroups") && strings.HasSuffix(m.Data.TypeUrl, "Metrics"),
			"data type %q is not a cgroups Metrics", m.Data.TypeUrl)
	}())
}
