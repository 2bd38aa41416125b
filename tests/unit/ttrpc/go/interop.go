// Command interop speaks ttRPC with Debian's github.com/containerd/ttrpc (the
// library containerd-shim-runc-v2 is built with), so ttrpc_test can check the
// C++ client and server against the real thing.
//
//	interop serve SOCKET  serve ctrd.test.v1.Test on SOCKET; print "ready" once listening
//	interop call SOCKET   call a ctrd.test.v1.Test served on SOCKET; print "ok" when all checks pass
//
// The service: Echo returns its google.protobuf.StringValue; Fail returns
// NotFound "no such thing: <value>"; Namespace returns the namespace metadata.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containerd/ttrpc"
	ptypes "github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const service = "ctrd.test.v1.Test"

func serve(path string) error {
	server, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	server.Register(service, map[string]ttrpc.Method{
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req ptypes.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return &req, nil
		},
		"Fail": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req ptypes.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return nil, status.Errorf(codes.NotFound, "no such thing: %s", req.Value)
		},
		"Namespace": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			ns, _ := ttrpc.GetMetadataValue(ctx, "containerd-namespace-ttrpc")
			deadline := "none"
			if _, ok := ctx.Deadline(); ok {
				deadline = "set"
			}
			return &ptypes.StringValue{Value: ns + "|" + deadline}, nil
		},
	})
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return server.Serve(context.Background(), l)
}

func call(path string) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = ttrpc.WithMetadata(ctx, ttrpc.MD{"containerd-namespace-ttrpc": []string{"k8s.io"}})

	var resp ptypes.StringValue
	if err := client.Call(ctx, service, "Echo", &ptypes.StringValue{Value: "from go"}, &resp); err != nil {
		return fmt.Errorf("Echo: %w", err)
	}
	if resp.Value != "from go" {
		return fmt.Errorf("Echo returned %q", resp.Value)
	}
	err = client.Call(ctx, service, "Fail", &ptypes.StringValue{Value: "x"}, &resp)
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing: x" {
		return fmt.Errorf("Fail returned %v", err)
	}
	if err := client.Call(ctx, service, "Namespace", &ptypes.StringValue{}, &resp); err != nil {
		return fmt.Errorf("Namespace: %w", err)
	}
	if resp.Value != "k8s.io|set" {
		return fmt.Errorf("Namespace returned %q", resp.Value)
	}
	err = client.Call(ctx, "ctrd.test.v1.Nope", "Echo", &ptypes.StringValue{}, &resp)
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented {
		return fmt.Errorf("an unknown service returned %v", err)
	}
	fmt.Println("ok")
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: interop serve|call SOCKET")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "call":
		err = call(os.Args[2])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}
