// Command conformance drives a containerd-compatible daemon through
// containerd's own Go client (github.com/containerd/containerd, 1.6) and
// checks the behaviours that client code relies on: the error kinds it
// branches on (errdefs.Is*), resumable ingests, ref locking, namespace
// isolation, leases, event delivery, and running containers as tasks.
//
// It prints one line per check ("PASS name" / "FAIL name: why") and a closing
// "conformance: N passed, N failed"; it exits 1 when any check fails and 2
// when it cannot reach the daemon at all.
//
// Every object it creates lives in namespaces with a per-run random suffix, so
// it can run against a daemon that already holds state (containerd itself
// included, which is how the checks themselves are validated).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd"
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/events"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/typeurl"
	ptypes "github.com/gogo/protobuf/types"
	"github.com/google/uuid"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// How long any single wait (dial, event delivery, lock release) may take before
// the check fails: generous for a loaded 2-core machine, still bounded.
const waitLimit = 15 * time.Second

type suite struct {
	client *containerd.Client
	cs     content.Store
	suffix string
	passed int
	failed int
	// OCI image tarball for the tasks section; empty skips that section.
	imageTar string
}

func (s *suite) check(name string, err error) bool {
	if err != nil {
		s.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return false
	}
	s.passed++
	fmt.Printf("PASS %s\n", name)
	return true
}

// ns returns a namespace name unique to this run.
func (s *suite) ns(base string) string { return "conf-" + base + "-" + s.suffix }

func expect(cond bool, format string, args ...interface{}) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// describe shows both the client-side error and the gRPC code it came from,
// since a mismatch is usually a wrong code on the wire.
func describe(err error) string {
	if err == nil {
		return "success"
	}
	var code string
	if st, ok := status.FromError(errors.Unwrap(err)); ok {
		code = st.Code().String()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code().String()
	}
	if code != "" {
		return fmt.Sprintf("%v (grpc code %s)", err, code)
	}
	return err.Error()
}

// wantErr checks that err is of the kind pred recognizes (an errdefs.Is* helper).
func wantErr(err error, pred func(error) bool, kind string) error {
	if err == nil {
		return fmt.Errorf("expected %s, got success", kind)
	}
	if !pred(err) {
		return fmt.Errorf("expected %s, got %s", kind, describe(err))
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func descOf(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func labelsEqual(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || gv != v {
			return false
		}
	}
	return true
}

// connect retries containerd.New until the daemon answers or the deadline
// passes: the client fails at once while the socket file does not exist yet.
func connect(address string, limit time.Duration) (*containerd.Client, error) {
	deadline := time.Now().Add(limit)
	for {
		c, err := containerd.New(address, containerd.WithTimeout(2*time.Second))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = c.Version(ctx)
			cancel()
			if err == nil {
				return c, nil
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("daemon at %s did not answer within %v: %w", address, limit, err)
		}
		<-time.After(100 * time.Millisecond)
	}
}

func (s *suite) testServer(ctx context.Context) {
	v, err := s.client.Version(ctx)
	s.check("version/Version", func() error {
		if err != nil {
			return err
		}
		return expect(v.Version != "", "empty version string")
	}())

	info, err := s.client.Server(ctx)
	s.check("introspection/Server UUID", func() error {
		if err != nil {
			return err
		}
		if _, err := uuid.Parse(info.UUID); err != nil {
			return fmt.Errorf("UUID %q does not parse: %v", info.UUID, err)
		}
		again, err := s.client.Server(ctx)
		if err != nil {
			return err
		}
		return expect(again.UUID == info.UUID, "UUID changed between calls: %q then %q", info.UUID, again.UUID)
	}())

	resp, err := s.client.HealthService().Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	s.check("healthcheck/Check SERVING", func() error {
		if err != nil {
			return err
		}
		return expect(resp.Status == grpc_health_v1.HealthCheckResponse_SERVING, "status %v", resp.Status)
	}())

	is := s.client.IntrospectionService()
	ids := func(filters ...string) (map[string]string, error) {
		r, err := is.Plugins(ctx, filters)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, p := range r.Plugins {
			out[p.Type+"."+p.ID] = p.Type
		}
		return out, nil
	}

	s.check("introspection/Plugins unfiltered lists the services used here", func() error {
		all, err := ids()
		if err != nil {
			return err
		}
		var missing []string
		for _, id := range []string{"content", "namespaces", "leases", "events", "introspection", "version", "healthcheck"} {
			if _, ok := all["io.containerd.grpc.v1."+id]; !ok {
				missing = append(missing, id)
			}
		}
		return expect(len(missing) == 0, "grpc plugins missing: %v", missing)
	}())

	s.check("introspection/Plugins filter type==io.containerd.grpc.v1", func() error {
		got, err := ids("type==io.containerd.grpc.v1")
		if err != nil {
			return err
		}
		for uri, typ := range got {
			if typ != "io.containerd.grpc.v1" {
				return fmt.Errorf("filter let through %s", uri)
			}
		}
		return expect(len(got) >= 7, "only %d grpc plugins: %v", len(got), got)
	}())

	s.check("introspection/Plugins filter type+id selects one plugin with exports", func() error {
		r, err := is.Plugins(ctx, []string{"type==io.containerd.content.v1,id==content"})
		if err != nil {
			return err
		}
		if len(r.Plugins) != 1 {
			return fmt.Errorf("want 1 plugin, got %d", len(r.Plugins))
		}
		p := r.Plugins[0]
		if p.InitErr != nil {
			return fmt.Errorf("content plugin has init error %v", p.InitErr)
		}
		return expect(p.Exports["root"] != "", "content plugin exports no root: %v", p.Exports)
	}())

	s.check("introspection/Plugins several filters are ORed", func() error {
		got, err := ids("type==io.containerd.grpc.v1,id==leases", "type==io.containerd.grpc.v1,id==namespaces")
		if err != nil {
			return err
		}
		_, a := got["io.containerd.grpc.v1.leases"]
		_, b := got["io.containerd.grpc.v1.namespaces"]
		return expect(len(got) == 2 && a && b, "got %v", got)
	}())

	s.check("introspection/Plugins filter matching nothing", func() error {
		got, err := ids("type==io.containerd.nothing.v1")
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "got %v", got)
	}())

	s.check("introspection/Plugins bad filter is InvalidArgument", func() error {
		_, err := is.Plugins(ctx, []string{"id=="})
		return wantErr(err, errdefs.IsInvalidArgument, "InvalidArgument")
	}())
}

func (s *suite) testNamespaces(ctx context.Context) {
	store := s.client.NamespaceService()
	name := s.ns("ns")
	ctx = namespaces.WithNamespace(ctx, name)

	s.check("namespaces/Create", store.Create(ctx, name, map[string]string{"a": "1"}))
	s.check("namespaces/Create duplicate is AlreadyExists", wantErr(store.Create(ctx, name, nil), errdefs.IsAlreadyExists, "AlreadyExists"))
	s.check("namespaces/Create bad name is InvalidArgument", wantErr(store.Create(ctx, "Bad Name!", nil), errdefs.IsInvalidArgument, "InvalidArgument"))

	s.check("namespaces/List includes it", func() error {
		names, err := store.List(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == name {
				return nil
			}
		}
		return fmt.Errorf("%s not in %v", name, names)
	}())

	s.check("namespaces/Labels after Create", func() error {
		l, err := store.Labels(ctx, name)
		if err != nil {
			return err
		}
		return expect(labelsEqual(l, map[string]string{"a": "1"}), "labels %v", l)
	}())

	s.check("namespaces/SetLabel adds", func() error {
		if err := store.SetLabel(ctx, name, "b", "2"); err != nil {
			return err
		}
		l, err := store.Labels(ctx, name)
		if err != nil {
			return err
		}
		return expect(labelsEqual(l, map[string]string{"a": "1", "b": "2"}), "labels %v", l)
	}())

	s.check("namespaces/SetLabel empty value removes", func() error {
		if err := store.SetLabel(ctx, name, "a", ""); err != nil {
			return err
		}
		l, err := store.Labels(ctx, name)
		if err != nil {
			return err
		}
		return expect(labelsEqual(l, map[string]string{"b": "2"}), "labels %v", l)
	}())

	// containerd answers Labels for an unknown namespace with no labels rather
	// than NotFound, and SetLabel creates the namespace: ctr relies on neither
	// failing.
	missing := s.ns("missing")
	s.check("namespaces/Labels of a missing namespace is empty, not an error", func() error {
		l, err := store.Labels(ctx, missing)
		if err != nil {
			return fmt.Errorf("got %s", describe(err))
		}
		return expect(len(l) == 0, "labels %v", l)
	}())
	s.check("namespaces/SetLabel on a missing namespace creates it", func() error {
		if err := store.SetLabel(ctx, missing, "k", "v"); err != nil {
			return fmt.Errorf("got %s", describe(err))
		}
		l, err := store.Labels(ctx, missing)
		if err != nil {
			return err
		}
		if !labelsEqual(l, map[string]string{"k": "v"}) {
			return fmt.Errorf("labels %v", l)
		}
		return store.Delete(ctx, missing)
	}())

	// Writing into a namespace that was never created creates it (every client
	// starts in "default" without creating it), and content keeps it from
	// being deleted. The gc.root label keeps a collecting daemon from removing
	// the unleased blob under the test.
	implicit := s.ns("implicit")
	ictx := namespaces.WithNamespace(ctx, implicit)
	data := randomBytes(1024)
	desc := descOf(data)
	if s.check("namespaces/writing content into an unknown namespace creates it", func() error {
		if err := content.WriteBlob(ictx, s.cs, "ns-holder", bytes.NewReader(data), desc,
			content.WithLabels(map[string]string{"containerd.io/gc.root": "conformance"})); err != nil {
			return fmt.Errorf("WriteBlob: %w", err)
		}
		names, err := store.List(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == implicit {
				return nil
			}
		}
		return fmt.Errorf("%s not in %v", implicit, names)
	}()) {
		s.check("namespaces/Delete holding content is FailedPrecondition",
			wantErr(store.Delete(ctx, implicit), errdefs.IsFailedPrecondition, "FailedPrecondition"))
		s.check("namespaces/Delete after its content is deleted", func() error {
			if err := s.cs.Delete(ictx, desc.Digest); err != nil {
				return fmt.Errorf("content Delete: %w", err)
			}
			return store.Delete(ctx, implicit)
		}())
	}

	s.check("namespaces/Delete once empty", store.Delete(ctx, name))
	s.check("namespaces/List no longer includes it", func() error {
		names, err := store.List(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == name {
				return fmt.Errorf("%s still listed", name)
			}
		}
		return nil
	}())
	s.check("namespaces/Delete missing is NotFound", wantErr(store.Delete(ctx, name), errdefs.IsNotFound, "NotFound"))
}

func (s *suite) testContent(ctx context.Context) {
	cs := s.cs
	nsA, nsB := s.ns("a"), s.ns("b")
	// Under a lease, as real clients write: a daemon with GC collects
	// unleased, unreferenced blobs at any moment.
	ctxA, doneA, err := s.client.WithLease(namespaces.WithNamespace(ctx, nsA))
	if !s.check("content/client.WithLease in namespace A", err) {
		return
	}
	ctxB, doneB, err := s.client.WithLease(namespaces.WithNamespace(ctx, nsB))
	if !s.check("content/client.WithLease in namespace B", err) {
		return
	}

	// Larger than the client's 1 MiB copy buffer, so the blob takes several
	// Write messages on one stream.
	data := randomBytes(2*1024*1024 + 4321)
	desc := descOf(data)

	if !s.check("content/WriteBlob with size and digest", content.WriteBlob(ctxA, cs, "conf-blob", bytes.NewReader(data), desc,
		content.WithLabels(map[string]string{"conf": "1"}))) {
		return
	}

	s.check("content/Info", func() error {
		info, err := cs.Info(ctxA, desc.Digest)
		if err != nil {
			return err
		}
		if info.Digest != desc.Digest || info.Size != desc.Size {
			return fmt.Errorf("info %s/%d, want %s/%d", info.Digest, info.Size, desc.Digest, desc.Size)
		}
		if info.CreatedAt.IsZero() || info.UpdatedAt.IsZero() {
			return fmt.Errorf("zero timestamps: %v %v", info.CreatedAt, info.UpdatedAt)
		}
		return expect(labelsEqual(info.Labels, map[string]string{"conf": "1"}), "commit labels %v", info.Labels)
	}())

	s.check("content/WriteBlob of existing content is a no-op success", func() error {
		// The reader would fail if consumed: an existing blob must short-cut.
		return content.WriteBlob(ctxA, cs, "conf-blob-again", iotestErrReader{}, desc)
	}())

	s.check("content/Update labels.x keeps other labels", func() error {
		info, err := cs.Update(ctxA, content.Info{Digest: desc.Digest, Labels: map[string]string{"x": "1", "ignored": "y"}}, "labels.x")
		if err != nil {
			return err
		}
		want := map[string]string{"conf": "1", "x": "1"}
		if !labelsEqual(info.Labels, want) {
			return fmt.Errorf("returned labels %v, want %v", info.Labels, want)
		}
		again, err := cs.Info(ctxA, desc.Digest)
		if err != nil {
			return err
		}
		return expect(labelsEqual(again.Labels, want), "stored labels %v, want %v", again.Labels, want)
	}())

	s.check("content/Update labels.x absent from info removes it", func() error {
		info, err := cs.Update(ctxA, content.Info{Digest: desc.Digest}, "labels.x")
		if err != nil {
			return err
		}
		return expect(labelsEqual(info.Labels, map[string]string{"conf": "1"}), "labels %v", info.Labels)
	}())

	s.check("content/Update unknown field is InvalidArgument", func() error {
		_, err := cs.Update(ctxA, content.Info{Digest: desc.Digest, Size: 1}, "size")
		return wantErr(err, errdefs.IsInvalidArgument, "InvalidArgument")
	}())

	s.check("content/Update missing digest is NotFound", func() error {
		_, err := cs.Update(ctxA, content.Info{Digest: digest.FromString("missing"), Labels: map[string]string{"x": "1"}}, "labels.x")
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())

	walk := func(ctx context.Context, filters ...string) ([]digest.Digest, error) {
		var out []digest.Digest
		err := cs.Walk(ctx, func(i content.Info) error { out = append(out, i.Digest); return nil }, filters...)
		return out, err
	}
	s.check("content/Walk filter labels.conf==1", func() error {
		got, err := walk(ctxA, "labels.conf==1")
		if err != nil {
			return err
		}
		return expect(len(got) == 1 && got[0] == desc.Digest, "got %v", got)
	}())
	s.check("content/Walk filter digest==", func() error {
		got, err := walk(ctxA, "digest=="+desc.Digest.String())
		if err != nil {
			return err
		}
		return expect(len(got) == 1 && got[0] == desc.Digest, "got %v", got)
	}())
	s.check("content/Walk filter matching nothing", func() error {
		got, err := walk(ctxA, "labels.conf==2")
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "got %v", got)
	}())

	s.check("content/ReaderAt reads back the bytes", func() error {
		ra, err := cs.ReaderAt(ctxA, desc)
		if err != nil {
			return err
		}
		defer ra.Close()
		if ra.Size() != desc.Size {
			return fmt.Errorf("Size() %d, want %d", ra.Size(), desc.Size)
		}
		whole, err := content.ReadBlob(ctxA, cs, desc)
		if err != nil {
			return fmt.Errorf("ReadBlob: %w", err)
		}
		if !bytes.Equal(whole, data) {
			return errors.New("ReadBlob bytes differ")
		}
		part := make([]byte, 5000)
		n, err := ra.ReadAt(part, 1<<20+7)
		if err != nil && err != io.EOF {
			return fmt.Errorf("ReadAt: %w", err)
		}
		return expect(n == len(part) && bytes.Equal(part, data[1<<20+7:1<<20+7+5000]), "ReadAt at offset: %d bytes, equal=%v", n, bytes.Equal(part[:n], data[1<<20+7:1<<20+7+n]))
	}())

	// Namespace isolation.
	s.check("content/Info from another namespace is NotFound", func() error {
		_, err := cs.Info(ctxB, desc.Digest)
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
	s.check("content/ReaderAt from another namespace is NotFound", func() error {
		_, err := cs.ReaderAt(ctxB, desc)
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
	s.check("content/Delete from another namespace is NotFound", wantErr(cs.Delete(ctxB, desc.Digest), errdefs.IsNotFound, "NotFound"))
	s.check("content/same blob written in another namespace has its own labels", func() error {
		if err := content.WriteBlob(ctxB, cs, "conf-blob", bytes.NewReader(data), desc, content.WithLabels(map[string]string{"b": "1"})); err != nil {
			return err
		}
		info, err := cs.Info(ctxB, desc.Digest)
		if err != nil {
			return err
		}
		if !labelsEqual(info.Labels, map[string]string{"b": "1"}) {
			return fmt.Errorf("labels in B %v", info.Labels)
		}
		got, err := content.ReadBlob(ctxB, cs, desc)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return errors.New("bytes differ in B")
		}
		if err := cs.Delete(ctxB, desc.Digest); err != nil {
			return fmt.Errorf("Delete in B: %w", err)
		}
		_, err = cs.Info(ctxA, desc.Digest)
		return err
	}())

	s.check("content/Delete", cs.Delete(ctxA, desc.Digest))
	s.check("content/Info after Delete is NotFound", func() error {
		_, err := cs.Info(ctxA, desc.Digest)
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
	s.check("content/ReaderAt after Delete is NotFound", func() error {
		_, err := cs.ReaderAt(ctxA, desc)
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
	s.check("content/Delete again is NotFound", wantErr(cs.Delete(ctxA, desc.Digest), errdefs.IsNotFound, "NotFound"))

	s.testCommitFailures(ctxA)
	s.testResume(ctxA)
	s.testLocking(ctxA, ctxB)

	// Leave nothing behind: both namespaces are empty once their leases go.
	if err := doneA(ctxA); err != nil {
		s.check("content/cleanup lease A", err)
	}
	if err := doneB(ctxB); err != nil {
		s.check("content/cleanup lease B", err)
	}
	for _, n := range []string{nsA, nsB} {
		if err := s.client.NamespaceService().Delete(ctx, n); err != nil && !errdefs.IsNotFound(err) {
			s.check("content/cleanup namespace "+n, err)
		}
	}
}

// iotestErrReader fails every read: passed where the client must not read.
type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("reader must not be consumed") }

func listRefs(ctx context.Context, cs content.Store, filters ...string) (map[string]content.Status, error) {
	sts, err := cs.ListStatuses(ctx, filters...)
	if err != nil {
		return nil, err
	}
	out := map[string]content.Status{}
	for _, st := range sts {
		out[st.Ref] = st
	}
	return out, nil
}

func (s *suite) testCommitFailures(ctx context.Context) {
	cs := s.cs
	data := randomBytes(10000)
	actual := digest.FromBytes(data)
	wrong := digest.FromString("not the data")
	ref := "conf-wrong-digest"

	s.check("content/Commit with wrong expected digest is FailedPrecondition", func() error {
		w, err := cs.Writer(ctx, content.WithRef(ref))
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			w.Close()
			return fmt.Errorf("Write: %w", err)
		}
		return wantErr(w.Commit(ctx, int64(len(data)), wrong), errdefs.IsFailedPrecondition, "FailedPrecondition")
	}())
	s.check("content/failed digest commit stores no blob", func() error {
		if _, err := cs.Info(ctx, actual); !errdefs.IsNotFound(err) {
			return fmt.Errorf("Info(actual digest): %s", describe(err))
		}
		_, err := cs.Info(ctx, wrong)
		return wantErr(err, errdefs.IsNotFound, "NotFound for Info(expected digest)")
	}())
	// containerd keeps the ingest of a failed commit (its data is intact), so a
	// client may Abort it or retry; Abort must then clear it.
	s.check("content/failed commit leaves an abortable ingest only", func() error {
		if err := cs.Abort(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("Abort: %s", describe(err))
		}
		refs, err := listRefs(ctx, cs)
		if err != nil {
			return err
		}
		_, still := refs[ref]
		return expect(!still, "ingest %s still listed after Abort", ref)
	}())

	s.check("content/Commit with wrong size is FailedPrecondition", func() error {
		w, err := cs.Writer(ctx, content.WithRef("conf-wrong-size"))
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			w.Close()
			return fmt.Errorf("Write: %w", err)
		}
		err = wantErr(w.Commit(ctx, int64(len(data))+1, ""), errdefs.IsFailedPrecondition, "FailedPrecondition")
		if _, ierr := cs.Info(ctx, actual); !errdefs.IsNotFound(ierr) {
			return fmt.Errorf("blob exists after failed commit: %s", describe(ierr))
		}
		if aerr := cs.Abort(ctx, "conf-wrong-size"); aerr != nil && !errdefs.IsNotFound(aerr) {
			return fmt.Errorf("Abort: %s", describe(aerr))
		}
		return err
	}())

	s.check("content/Abort of unknown ref is NotFound", wantErr(cs.Abort(ctx, "conf-never-written"), errdefs.IsNotFound, "NotFound"))
	s.check("content/Status of unknown ref is NotFound", func() error {
		_, err := cs.Status(ctx, "conf-never-written")
		return wantErr(err, errdefs.IsNotFound, "NotFound")
	}())
}

func (s *suite) testResume(ctx context.Context) {
	cs := s.cs
	data := randomBytes(300000)
	desc := descOf(data)
	half := int64(len(data) / 2)
	ref := "conf-resume"

	s.check("content/interrupted write (Write half, Close without Commit)", func() error {
		w, err := cs.Writer(ctx, content.WithRef(ref), content.WithDescriptor(desc))
		if err != nil {
			return err
		}
		n, err := w.Write(data[:half])
		if err != nil {
			w.Close()
			return err
		}
		if int64(n) != half {
			w.Close()
			return fmt.Errorf("wrote %d of %d", n, half)
		}
		return w.Close()
	}())

	s.check("content/ListStatuses shows the interrupted ingest", func() error {
		refs, err := listRefs(ctx, cs, "ref=="+ref)
		if err != nil {
			return err
		}
		st, ok := refs[ref]
		if !ok || len(refs) != 1 {
			return fmt.Errorf("filter ref==%s gave %v", ref, refs)
		}
		if st.Offset != half {
			return fmt.Errorf("offset %d, want %d", st.Offset, half)
		}
		return expect(st.Total == desc.Size, "total %d, want %d", st.Total, desc.Size)
	}())

	s.check("content/Status of the interrupted ingest", func() error {
		st, err := cs.Status(ctx, ref)
		if err != nil {
			return err
		}
		return expect(st.Ref == ref && st.Offset == half && !st.StartedAt.IsZero(), "status %+v", st)
	}())

	s.check("content/OpenWriter resumes at the written offset and commits", func() error {
		octx, cancel := context.WithTimeout(ctx, waitLimit)
		defer cancel()
		// The previous writer's Close only half-closes its stream, so the
		// daemon may still hold the ref for a moment: OpenWriter waits that out.
		w, err := content.OpenWriter(octx, cs, content.WithRef(ref), content.WithDescriptor(desc))
		if err != nil {
			return fmt.Errorf("OpenWriter: %w", err)
		}
		st, err := w.Status()
		if err != nil {
			w.Close()
			return err
		}
		if st.Offset != half {
			w.Close()
			return fmt.Errorf("resumed at offset %d, want %d", st.Offset, half)
		}
		if _, err := w.Write(data[half:]); err != nil {
			w.Close()
			return fmt.Errorf("Write rest: %w", err)
		}
		if err := w.Commit(octx, desc.Size, desc.Digest); err != nil {
			return fmt.Errorf("Commit: %w", err)
		}
		got, err := content.ReadBlob(ctx, cs, desc)
		if err != nil {
			return err
		}
		return expect(bytes.Equal(got, data), "committed bytes differ")
	}())

	s.check("content/committed ingest is gone from ListStatuses", func() error {
		refs, err := listRefs(ctx, cs)
		if err != nil {
			return err
		}
		_, still := refs[ref]
		return expect(!still, "ingest %s still listed: %+v", ref, refs[ref])
	}())
	if err := cs.Delete(ctx, desc.Digest); err != nil {
		s.check("content/cleanup resumed blob", err)
	}

	// The path a pull takes after a crash: WriteBlob with the same ref finds
	// the partial ingest and only sends the rest (content.Copy seeks the reader).
	ref2 := "conf-resume-writeblob"
	s.check("content/WriteBlob resumes a partial ingest by ref", func() error {
		w, err := cs.Writer(ctx, content.WithRef(ref2), content.WithDescriptor(desc))
		if err != nil {
			return err
		}
		if _, err := w.Write(data[:half]); err != nil {
			w.Close()
			return err
		}
		w.Close()
		wctx, cancel := context.WithTimeout(ctx, waitLimit)
		defer cancel()
		if err := content.WriteBlob(wctx, cs, ref2, bytes.NewReader(data), desc); err != nil {
			return err
		}
		got, err := content.ReadBlob(ctx, cs, desc)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return errors.New("committed bytes differ")
		}
		return cs.Delete(ctx, desc.Digest)
	}())
}

func (s *suite) testLocking(ctxA, ctxB context.Context) {
	cs := s.cs
	ref := "conf-locked"

	w1, err := cs.Writer(ctxA, content.WithRef(ref))
	if !s.check("content/first Writer on a ref", err) {
		return
	}
	if _, err := w1.Write([]byte("held")); err != nil {
		s.check("content/first Writer writes", err)
	}

	s.check("content/second Writer on a held ref is Unavailable", func() error {
		w2, err := cs.Writer(ctxA, content.WithRef(ref))
		if err == nil {
			w2.Close()
		}
		return wantErr(err, errdefs.IsUnavailable, "Unavailable")
	}())

	s.check("content/OpenWriter on a held ref keeps retrying until its deadline", func() error {
		const limit = 300 * time.Millisecond
		octx, cancel := context.WithTimeout(ctxA, limit)
		defer cancel()
		start := time.Now()
		w2, err := content.OpenWriter(octx, cs, content.WithRef(ref))
		if err == nil {
			w2.Close()
			return errors.New("opened a held ref")
		}
		// It returns the last lock error, or the deadline when that struck
		// during a retry: either way only after waiting.
		if !errdefs.IsUnavailable(err) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("expected Unavailable or DeadlineExceeded, got %s", describe(err))
		}
		return expect(time.Since(start) >= limit*9/10, "gave up after %v, before its deadline", time.Since(start))
	}())

	s.check("content/same ref in another namespace is not locked", func() error {
		w, err := cs.Writer(ctxB, content.WithRef(ref))
		if err != nil {
			return err
		}
		w.Close()
		octx, cancel := context.WithTimeout(ctxB, waitLimit)
		defer cancel()
		// Abort only what exists; a Writer that wrote nothing may leave no ingest.
		if err := abortWhenFree(octx, cs, ref); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("Abort in B: %s", describe(err))
		}
		return nil
	}())

	s.check("content/ListStatuses of another namespace does not show the ingest", func() error {
		refs, err := listRefs(ctxB, cs)
		if err != nil {
			return err
		}
		_, seen := refs[ref]
		return expect(!seen, "ingest of A visible in B")
	}())

	w1.Close()
	s.check("content/OpenWriter succeeds once the holder closed", func() error {
		octx, cancel := context.WithTimeout(ctxA, waitLimit)
		defer cancel()
		w, err := content.OpenWriter(octx, cs, content.WithRef(ref))
		if err != nil {
			return err
		}
		st, err := w.Status()
		w.Close()
		if err != nil {
			return err
		}
		if st.Offset != 4 {
			return fmt.Errorf("offset %d, want 4", st.Offset)
		}
		return abortWhenFree(octx, cs, ref)
	}())
}

// abortWhenFree aborts ref, retrying (bounded by ctx) while the daemon may
// still be closing a just-closed writer: a writer's Close only half-closes
// its stream, and containerd itself can fail an Abort that races the
// server-side close ("directory not empty").
func abortWhenFree(ctx context.Context, cs content.Store, ref string) error {
	for {
		err := cs.Abort(ctx, ref)
		if err == nil || errdefs.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *suite) testLeases(ctx context.Context) {
	ls := s.client.LeasesService()
	nsL := s.ns("leases")
	ctx = namespaces.WithNamespace(ctx, nsL)
	cs := s.cs

	l, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
	if !s.check("leases/Create WithRandomID WithExpiration", func() error {
		if err != nil {
			return err
		}
		if l.ID == "" || l.CreatedAt.IsZero() {
			return fmt.Errorf("lease %+v", l)
		}
		return expect(l.Labels["containerd.io/gc.expire"] != "", "expire label missing: %v", l.Labels)
	}()) {
		return
	}

	s.check("leases/Create same ID is AlreadyExists", func() error {
		_, err := ls.Create(ctx, leases.WithID(l.ID))
		return wantErr(err, errdefs.IsAlreadyExists, "AlreadyExists")
	}())

	s.check("leases/List filter id==", func() error {
		got, err := ls.List(ctx, "id=="+l.ID)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].ID != l.ID {
			return fmt.Errorf("got %+v", got)
		}
		return expect(got[0].Labels["containerd.io/gc.expire"] == l.Labels["containerd.io/gc.expire"], "labels %v", got[0].Labels)
	}())

	s.check("leases/List in another namespace does not show it", func() error {
		got, err := ls.List(namespaces.WithNamespace(ctx, s.ns("other")), "id=="+l.ID)
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "got %+v", got)
	}())

	res := leases.Resource{ID: digest.FromString("leased").String(), Type: "content"}
	s.check("leases/AddResource content", ls.AddResource(ctx, l, res))
	s.check("leases/ListResources includes it", func() error {
		got, err := ls.ListResources(ctx, l)
		if err != nil {
			return err
		}
		return expect(len(got) == 1 && got[0] == res, "got %+v", got)
	}())
	s.check("leases/DeleteResource", ls.DeleteResource(ctx, l, res))
	s.check("leases/ListResources empty after DeleteResource", func() error {
		got, err := ls.ListResources(ctx, l)
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "got %+v", got)
	}())
	s.check("leases/AddResource content with bad digest is InvalidArgument",
		wantErr(ls.AddResource(ctx, l, leases.Resource{ID: "not-a-digest", Type: "content"}), errdefs.IsInvalidArgument, "InvalidArgument"))
	s.check("leases/AddResource unknown type is NotImplemented",
		wantErr(ls.AddResource(ctx, l, leases.Resource{ID: "x", Type: "bogus"}), errdefs.IsNotImplemented, "NotImplemented"))
	s.check("leases/AddResource to missing lease is NotFound",
		wantErr(ls.AddResource(ctx, leases.Lease{ID: "conf-no-such-lease"}, res), errdefs.IsNotFound, "NotFound"))

	s.check("leases/Delete", ls.Delete(ctx, l))
	s.check("leases/List after Delete is empty", func() error {
		got, err := ls.List(ctx, "id=="+l.ID)
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "got %+v", got)
	}())
	s.check("leases/Delete again is NotFound", wantErr(ls.Delete(ctx, l), errdefs.IsNotFound, "NotFound"))

	data := randomBytes(4096)
	desc := descOf(data)
	lctx, done, err := s.client.WithLease(ctx)
	if !s.check("leases/client.WithLease", err) {
		return
	}
	id, _ := leases.FromContext(lctx)
	s.check("leases/WriteBlob under a lease adds the blob to it", func() error {
		if err := content.WriteBlob(lctx, cs, "conf-leased", bytes.NewReader(data), desc); err != nil {
			return err
		}
		got, err := ls.ListResources(ctx, leases.Lease{ID: id})
		if err != nil {
			return err
		}
		for _, r := range got {
			if r.Type == "content" && r.ID == desc.Digest.String() {
				return nil
			}
		}
		return fmt.Errorf("lease %s resources %+v lack content %s", id, got, desc.Digest)
	}())
	s.check("leases/WithLease done func deletes the lease", func() error {
		if err := done(ctx); err != nil {
			return err
		}
		got, err := ls.List(ctx, "id=="+id)
		if err != nil {
			return err
		}
		return expect(len(got) == 0, "lease still listed: %+v", got)
	}())

	// The blob itself may already be gone (a daemon with GC collects it once
	// unleased); clear it and the namespace either way.
	if err := cs.Delete(ctx, desc.Digest); err != nil && !errdefs.IsNotFound(err) {
		s.check("leases/cleanup blob", err)
	}
	if err := s.client.NamespaceService().Delete(ctx, nsL); err != nil && !errdefs.IsNotFound(err) {
		s.check("leases/cleanup namespace", err)
	}
}

// waitEnvelope returns the first envelope from ch for which match is true,
// failing on a subscription error or when ctx ends.
func waitEnvelope(ctx context.Context, ch <-chan *events.Envelope, errs <-chan error, match func(*events.Envelope) bool, seen *[]string) (*events.Envelope, error) {
	for {
		select {
		case env := <-ch:
			if seen != nil {
				*seen = append(*seen, env.Topic)
			}
			if match(env) {
				return env, nil
			}
		case err := <-errs:
			return nil, fmt.Errorf("subscription ended: %s", describe(err))
		case <-ctx.Done():
			return nil, fmt.Errorf("no matching event within the time limit: %w", ctx.Err())
		}
	}
}

func decodeEvent(env *events.Envelope) (interface{}, error) {
	if env.Event == nil {
		return nil, errors.New("envelope without event")
	}
	return typeurl.UnmarshalAny(env.Event)
}

func (s *suite) testEvents(ctx context.Context) {
	es := s.client.EventService()
	nsE := s.ns("events")
	ctxE := namespaces.WithNamespace(ctx, nsE)

	subCtx, cancel := context.WithCancel(ctxE)
	defer cancel()
	ch, errs := es.Subscribe(subCtx,
		`topic=="/namespaces/create"`,
		`topic=="/conformance/sync"`,
		`topic=="/conformance/custom"`)

	// Subscribe returns before the daemon has registered the subscriber, so
	// publish a marker until one comes back: from then on nothing is missed.
	s.check("events/Publish reaches an active subscriber", func() error {
		wctx, wcancel := context.WithTimeout(ctxE, waitLimit)
		defer wcancel()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := es.Publish(ctxE, "/conformance/sync", &ptypes.Empty{}); err != nil {
				return fmt.Errorf("Publish: %s", describe(err))
			}
			select {
			case env := <-ch:
				if env.Topic != "/conformance/sync" {
					return fmt.Errorf("unexpected first event %s", env.Topic)
				}
				return nil
			case err := <-errs:
				return fmt.Errorf("subscription ended: %s", describe(err))
			case <-wctx.Done():
				return errors.New("no event within the time limit")
			case <-tick.C:
			}
		}
	}())
	// Drain markers that were still in flight.
	drainSync := func(env *events.Envelope) bool { return env.Topic != "/conformance/sync" }

	created := s.ns("events-created")
	s.check("events/namespace Create emits /namespaces/create", func() error {
		labels := map[string]string{"k": "v"}
		if err := s.client.NamespaceService().Create(ctxE, created, labels); err != nil {
			return fmt.Errorf("Create: %w", err)
		}
		wctx, wcancel := context.WithTimeout(ctxE, waitLimit)
		defer wcancel()
		env, err := waitEnvelope(wctx, ch, errs, drainSync, nil)
		if err != nil {
			return err
		}
		if env.Topic != "/namespaces/create" {
			return fmt.Errorf("topic %q", env.Topic)
		}
		ev, err := decodeEvent(env)
		if err != nil {
			return fmt.Errorf("decode %s: %w", env.Event.TypeUrl, err)
		}
		nc, ok := ev.(*eventstypes.NamespaceCreate)
		if !ok {
			return fmt.Errorf("event type %T (%s)", ev, env.Event.TypeUrl)
		}
		if nc.Name != created || !labelsEqual(nc.Labels, labels) {
			return fmt.Errorf("event %+v", nc)
		}
		if env.Timestamp.IsZero() {
			return errors.New("zero timestamp")
		}
		// containerd publishes with the caller's namespace, not the created one.
		return expect(env.Namespace == nsE, "envelope namespace %q, want the caller's %q", env.Namespace, nsE)
	}())

	s.check("events/Publish of a typed event arrives decoded, with the caller's namespace", func() error {
		if err := es.Publish(ctxE, "/conformance/custom", &eventstypes.NamespaceCreate{Name: "payload", Labels: map[string]string{"p": "1"}}); err != nil {
			return fmt.Errorf("Publish: %s", describe(err))
		}
		wctx, wcancel := context.WithTimeout(ctxE, waitLimit)
		defer wcancel()
		env, err := waitEnvelope(wctx, ch, errs, drainSync, nil)
		if err != nil {
			return err
		}
		if env.Topic != "/conformance/custom" || env.Namespace != nsE {
			return fmt.Errorf("envelope %s in %q", env.Topic, env.Namespace)
		}
		ev, err := decodeEvent(env)
		if err != nil {
			return err
		}
		nc, ok := ev.(*eventstypes.NamespaceCreate)
		return expect(ok && nc.Name == "payload" && nc.Labels["p"] == "1", "event %T %+v", ev, ev)
	}())

	s.check("events/topics outside the filter are not delivered", func() error {
		if err := es.Publish(ctxE, "/conformance/filtered-out", &ptypes.Empty{}); err != nil {
			return err
		}
		// Events from one publisher reach a subscriber in order, so the marker
		// published after the excluded one bounds the wait.
		if err := es.Publish(ctxE, "/conformance/custom", &ptypes.Empty{}); err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctxE, waitLimit)
		defer wcancel()
		var seen []string
		env, err := waitEnvelope(wctx, ch, errs, drainSync, &seen)
		if err != nil {
			return err
		}
		if env.Topic != "/conformance/custom" {
			return fmt.Errorf("got %s (seen %v)", env.Topic, seen)
		}
		ev, err := decodeEvent(env)
		if err != nil {
			return err
		}
		_, ok := ev.(*ptypes.Empty)
		return expect(ok, "event %T, want *types.Empty", ev)
	}())

	s.check("events/Forward keeps the envelope's namespace and timestamp", func() error {
		any, err := typeurl.MarshalAny(&ptypes.Empty{})
		if err != nil {
			return err
		}
		ts := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		other := s.ns("forwarded")
		if err := es.Forward(ctxE, &events.Envelope{Timestamp: ts, Namespace: other, Topic: "/conformance/custom", Event: any}); err != nil {
			return fmt.Errorf("Forward: %s", describe(err))
		}
		wctx, wcancel := context.WithTimeout(ctxE, waitLimit)
		defer wcancel()
		env, err := waitEnvelope(wctx, ch, errs, drainSync, nil)
		if err != nil {
			return err
		}
		return expect(env.Namespace == other && env.Timestamp.Equal(ts) && env.Topic == "/conformance/custom",
			"got %s in %q at %v", env.Topic, env.Namespace, env.Timestamp)
	}())

	s.check("events/Publish without a namespace is FailedPrecondition",
		wantErr(es.Publish(ctx, "/conformance/custom", &ptypes.Empty{}), errdefs.IsFailedPrecondition, "FailedPrecondition"))
	s.check("events/Publish with an invalid topic is InvalidArgument",
		wantErr(es.Publish(ctxE, "conformance-no-slash", &ptypes.Empty{}), errdefs.IsInvalidArgument, "InvalidArgument"))

	// containerd ends such a subscription with code Unknown (its events service
	// does not map the parse error), so only the failure itself is checked.
	s.check("events/Subscribe with a bad filter ends the subscription with an error", func() error {
		bctx, bcancel := context.WithTimeout(ctxE, waitLimit)
		defer bcancel()
		bch, berrs := es.Subscribe(bctx, "topic==")
		select {
		case env := <-bch:
			return fmt.Errorf("got event %s", env.Topic)
		case err := <-berrs:
			return expect(err != nil, "subscription ended without an error")
		case <-bctx.Done():
			return errors.New("subscription neither failed nor ended")
		}
	}())

	cancel()
	for _, n := range []string{created, nsE} {
		if err := s.client.NamespaceService().Delete(ctx, n); err != nil && !errdefs.IsNotFound(err) {
			s.check("events/cleanup namespace "+n, err)
		}
	}
}

func main() {
	address := flag.String("address", "", "unix socket of the daemon")
	dialLimit := flag.Duration("dial-timeout", 30*time.Second, "how long to wait for the daemon to answer")
	only := flag.String("run", "", "comma-separated sections to run (server,namespaces,content,leases,events,tasks); all when empty")
	imageTar := flag.String("image-tar", "", "busybox OCI image tarball (mkimage.py --busybox) for the tasks section; skipped when empty")
	flag.Parse()
	if *address == "" {
		fmt.Fprintln(os.Stderr, "usage: conformance -address SOCK")
		os.Exit(2)
	}

	client, err := connect(*address, *dialLimit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	defer client.Close()

	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		panic(err)
	}
	s := &suite{client: client, cs: client.ContentStore(), suffix: hex.EncodeToString(suffix), imageTar: *imageTar}

	sections := []struct {
		name string
		run  func(context.Context)
	}{
		{"server", s.testServer},
		{"namespaces", s.testNamespaces},
		{"content", s.testContent},
		{"leases", s.testLeases},
		{"events", s.testEvents},
		{"tasks", s.testTasks},
	}
	wanted := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			wanted[n] = true
		}
	}
	var names []string
	for _, sec := range sections {
		names = append(names, sec.name)
	}
	sort.Strings(names)
	for n := range wanted {
		if i := sort.SearchStrings(names, n); i == len(names) || names[i] != n {
			fmt.Fprintf(os.Stderr, "conformance: unknown section %q\n", n)
			os.Exit(2)
		}
	}

	// One bound for the whole run, so a daemon that hangs a call cannot hang CI.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, sec := range sections {
		if len(wanted) == 0 || wanted[sec.name] {
			sec.run(ctx)
		}
	}

	fmt.Printf("conformance: %d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}
