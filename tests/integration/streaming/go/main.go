// Command streamclient is a test peer for ctrd's CRI streaming server.
//
// It plays the role that the kubelet / kubectl client plays against a CRI
// streaming server: it upgrades a plain HTTP connection to SPDY/3.1,
// negotiates one of the Kubernetes streaming sub-protocols (channel.k8s.io
// v1..v4 for exec/attach, portforward.k8s.io for port forwarding), opens the
// typed streams that protocol expects and connects them to its own
// stdin/stdout/stderr. The integration tests run it against ctrd and compare
// what comes out, so it never writes anything but remote output to stdout.
//
// It is written against Debian's packaged github.com/moby/spdystream and the
// Go standard library only, so it builds in GOPATH mode without network
// access. It is intentionally narrow: http only, a single port per
// port-forward, at most one terminal-resize event.
//
// Usage:
//
//	streamclient [flags] exec|attach URL
//	streamclient [flags] portforward URL
//
// Exit status: the remote command's exit code (exec/attach over
// v4.channel.k8s.io), 0 on success, 1 on local errors, 2 on usage or
// protocol-level errors, 3 if the HTTP upgrade is refused, 124 on timeout.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

// Sub-protocol names, as sent in X-Stream-Protocol-Version.
const (
	protoV1          = "channel.k8s.io"
	protoV2          = "v2.channel.k8s.io"
	protoV3          = "v3.channel.k8s.io"
	protoV4          = "v4.channel.k8s.io"
	protoPortForward = "portforward.k8s.io"

	defaultExecProtocols        = protoV4 + "," + protoV3 + "," + protoV2 + "," + protoV1
	defaultPortForwardProtocols = protoPortForward
)

// Header names. SPDY requires lower-case header names on the wire;
// spdystream lower-cases whatever http.Header canonicalised them to.
const (
	headerProtocolVersion = "X-Stream-Protocol-Version"
	headerStreamType      = "streamtype"
	headerPort            = "port"
	headerRequestID       = "requestid"
)

// Values of the streamtype header.
const (
	streamError  = "error"
	streamStdin  = "stdin"
	streamStdout = "stdout"
	streamStderr = "stderr"
	streamResize = "resize"
	streamData   = "data"
)

const (
	// How long to wait for the server's SYN_REPLY to each stream; the same
	// bound the Kubernetes client uses.
	streamReplyTimeout = 30 * time.Second

	// How long to keep reading the body of a refused upgrade. A server that
	// omits Content-Length and keeps the connection open would otherwise
	// turn a clean "upgrade failed" (exit 3) into an overall timeout.
	refusedBodyTimeout = 5 * time.Second
)

// Exit codes.
const (
	exitOK       = 0
	exitLocal    = 1
	exitProtocol = 2 // also used for usage errors, like the flag package
	exitUpgrade  = 3
	exitTimeout  = 124
)

// options holds the parsed command line.
type options struct {
	mode      string // "exec", "attach" or "portforward"
	target    *url.URL
	stdin     bool
	stdout    bool
	stderr    bool
	tty       bool
	protocols []string
	resize    *terminalSize // nil unless -resize was given
	port      int
	timeout   time.Duration
}

// terminalSize is the message sent on the resize stream. The field names
// are part of the wire format (the server decodes this exact JSON shape), so
// they must not be renamed or given json tags.
type terminalSize struct {
	Width  uint16
	Height uint16
}

// exitError carries an exit status up to main together with the message to
// print, so helpers can choose the status without calling os.Exit (which
// would skip deferred cleanup such as closing the SPDY connection). An empty
// message means "exit silently", used for a remote non-zero exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func failf(code int, format string, args ...interface{}) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

func main() {
	opts := parseArgs()

	// The timeout covers the whole session (dial, upgrade, streaming), so a
	// hung server shows up as a distinct exit status instead of a test
	// runner killing us with no explanation.
	if opts.timeout > 0 {
		time.AfterFunc(opts.timeout, func() {
			fmt.Fprintf(os.Stderr, "timeout after %s\n", opts.timeout)
			os.Exit(exitTimeout)
		})
	}

	err := run(opts)
	if err == nil {
		os.Exit(exitOK)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, ee.msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(exitLocal)
}

// parseArgs parses and validates the command line, exiting with status 2 and
// the usage text on any error.
func parseArgs() *options {
	o := &options{}
	flag.Usage = usage
	flag.BoolVar(&o.stdin, "stdin", false, "open a stdin stream and copy local stdin to it")
	flag.BoolVar(&o.stdout, "stdout", true, "open a stdout stream and copy it to local stdout")
	flag.BoolVar(&o.stderr, "stderr", true, "open a stderr stream and copy it to local stderr (forced off with -tty)")
	flag.BoolVar(&o.tty, "tty", false, "request a terminal session (no stderr stream; resize stream on v3/v4)")
	protocols := flag.String("protocols", "", "comma-separated protocols, most preferred first\n(default \""+defaultExecProtocols+"\" for exec/attach,\n\""+defaultPortForwardProtocols+"\" for portforward)")
	resize := flag.String("resize", "", "send one terminal size `WxH` on the resize stream (requires -tty)")
	flag.IntVar(&o.port, "port", 0, "remote port to forward (portforward only)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "overall time limit; 0 disables it (exit 124 when exceeded)")
	flag.Parse()

	if flag.NArg() != 2 {
		usageError("expected a mode and a URL")
	}
	o.mode = flag.Arg(0)
	switch o.mode {
	case "exec", "attach", "portforward":
	default:
		usageError(fmt.Sprintf("unknown mode %q", o.mode))
	}

	target, err := url.Parse(flag.Arg(1))
	if err != nil {
		usageError(fmt.Sprintf("bad URL: %v", err))
	}
	if target.Scheme != "http" || target.Host == "" {
		usageError(fmt.Sprintf("URL must be http://host[:port]/path, got %q", flag.Arg(1)))
	}
	o.target = target

	if *protocols == "" {
		if o.mode == "portforward" {
			*protocols = defaultPortForwardProtocols
		} else {
			*protocols = defaultExecProtocols
		}
	}
	for _, p := range strings.Split(*protocols, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.protocols = append(o.protocols, p)
		}
	}
	if len(o.protocols) == 0 {
		usageError("-protocols is empty")
	}

	// With a terminal the remote side merges stderr into stdout, and the
	// protocol has no stderr stream at all.
	if o.tty {
		o.stderr = false
	}

	if *resize != "" {
		if !o.tty {
			usageError("-resize requires -tty")
		}
		size, err := parseSize(*resize)
		if err != nil {
			usageError(err.Error())
		}
		o.resize = size
	}

	if o.mode == "portforward" && (o.port < 1 || o.port > 65535) {
		usageError("portforward needs -port between 1 and 65535")
	}
	return o
}

func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprintf(out, "usage: %s [flags] exec|attach URL\n", os.Args[0])
	fmt.Fprintf(out, "       %s [flags] portforward URL\n\nflags:\n", os.Args[0])
	flag.PrintDefaults()
}

func usageError(msg string) {
	fmt.Fprintf(flag.CommandLine.Output(), "%s: %s\n", os.Args[0], msg)
	usage()
	os.Exit(exitProtocol)
}

// parseSize parses "WxH" into a terminal size.
func parseSize(s string) (*terminalSize, error) {
	w, h, ok := strings.Cut(s, "x")
	if !ok {
		return nil, fmt.Errorf("-resize must be WxH, got %q", s)
	}
	width, err1 := strconv.ParseUint(w, 10, 16)
	height, err2 := strconv.ParseUint(h, 10, 16)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("-resize must be WxH with 16-bit unsigned values, got %q", s)
	}
	return &terminalSize{Width: uint16(width), Height: uint16(height)}, nil
}

// run performs the whole session and returns nil for exit status 0.
func run(o *options) error {
	netConn, negotiated, err := upgrade(o.target, o.protocols, o.timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "protocol: %s\n", negotiated)

	conn, err := spdystream.NewConnection(netConn, false)
	if err != nil {
		netConn.Close()
		return fmt.Errorf("starting SPDY session: %w", err)
	}
	// The server has no business opening streams towards us. The library's
	// no-op handler just acknowledges them and never reads or writes them,
	// which is also what the Kubernetes client does.
	go conn.Serve(spdystream.NoOpStreamHandler)
	// Close sends GOAWAY; the process exits right after, which tears down
	// the socket.
	defer conn.Close()

	if o.mode == "portforward" {
		if negotiated != protoPortForward {
			return failf(exitProtocol, "unexpected protocol %q (want %q)", negotiated, protoPortForward)
		}
		return portForward(conn, o)
	}

	switch negotiated {
	case "":
		// A server that does not pick a version speaks the original
		// unversioned protocol.
		negotiated = protoV1
	case protoV1, protoV2, protoV3, protoV4:
	default:
		return failf(exitProtocol, "unexpected protocol %q", negotiated)
	}
	return execOrAttach(conn, negotiated, o)
}

// upgrade dials the server, asks for an upgrade to SPDY/3.1 offering the
// given sub-protocols and returns the upgraded connection together with the
// protocol the server chose (possibly empty).
func upgrade(target *url.URL, protocols []string, timeout time.Duration) (net.Conn, string, error) {
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), "80")
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, "", fmt.Errorf("dial %s: %w", addr, err)
	}

	// The request is written by hand rather than with http.Request.Write so
	// that the bytes on the wire are exactly these and nothing else
	// (no User-Agent, no chunking decisions by net/http).
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\n", target.RequestURI())
	fmt.Fprintf(&req, "Host: %s\r\n", target.Host)
	req.WriteString("Connection: Upgrade\r\n")
	req.WriteString("Upgrade: SPDY/3.1\r\n")
	// One header line per protocol, most preferred first: the server takes
	// the first one it supports.
	for _, p := range protocols {
		fmt.Fprintf(&req, "%s: %s\r\n", headerProtocolVersion, p)
	}
	req.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("sending upgrade request: %w", err)
	}

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
	if err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("reading upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Best effort: a partial body after the deadline is still useful.
		conn.SetReadDeadline(time.Now().Add(refusedBodyTimeout))
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		conn.Close()
		return nil, "", failf(exitUpgrade, "upgrade failed: %s %s: %s",
			resp.Proto, resp.Status, strings.TrimRight(string(body), "\r\n"))
	}
	// net/http gives a 101 response an empty body, so nothing of the SPDY
	// session has been consumed except what sits in br's buffer.
	return &bufferedConn{Conn: conn, r: br}, resp.Header.Get(headerProtocolVersion), nil
}

// bufferedConn is the upgraded connection. The bufio.Reader used to parse
// the 101 response may already hold the first SPDY frames the server sent
// right behind it; those bytes must reach the SPDY framer before anything
// read from the socket later, so every read goes through that same reader
// (which reads the socket directly once its buffer is empty). Writes go
// straight to the socket.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// openStream creates a client-initiated stream and waits for the server's
// SYN_REPLY. Streams are opened one at a time, in protocol order, exactly as
// the Kubernetes client does.
func openStream(conn *spdystream.Connection, headers http.Header) (*spdystream.Stream, error) {
	kind := headers.Get(headerStreamType)
	stream, err := conn.CreateStream(headers, nil, false)
	if err != nil {
		return nil, fmt.Errorf("creating %s stream: %w", kind, err)
	}
	if err := stream.WaitTimeout(streamReplyTimeout); err != nil {
		return nil, failf(exitProtocol, "%s stream not accepted by server: %v", kind, err)
	}
	return stream, nil
}

func streamHeaders(kind string) http.Header {
	h := http.Header{}
	h.Set(headerStreamType, kind)
	return h
}

// waitGroup tracks the goroutines whose completion ends the session and
// remembers the first local error any of them hit.
type waitGroup struct {
	sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (w *waitGroup) goFunc(f func() error) {
	w.Add(1)
	go func() {
		defer w.Done()
		if err := f(); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
}

// readErrorStream starts draining the error stream into *dst. It is started
// as soon as the stream exists: spdystream hands a data frame to a reader
// synchronously, so an unread stream could stall frame delivery for others.
func readErrorStream(wg *waitGroup, stream *spdystream.Stream, dst *[]byte) {
	wg.goFunc(func() error {
		data, err := io.ReadAll(stream)
		*dst = data
		if err != nil {
			return fmt.Errorf("reading error stream: %w", err)
		}
		return nil
	})
}

// copyOut copies a remote output stream to a local file until the server
// half-closes the stream (or the connection goes away).
func copyOut(wg *waitGroup, dst *os.File, stream *spdystream.Stream, kind string) {
	wg.goFunc(func() error {
		if _, err := io.Copy(dst, stream); err != nil {
			return fmt.Errorf("copying %s: %w", kind, err)
		}
		return nil
	})
}

// copyIn copies local stdin to a stream and then half-closes the stream
// (FIN), which is how the remote side learns about end of input. It is not
// waited for: the session ends when the remote side is done, whether or not
// local stdin ever reaches EOF.
func copyIn(stream *spdystream.Stream, kind string) {
	go func() {
		if _, err := io.Copy(stream, os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "copying %s: %v\n", kind, err)
		}
		stream.Close()
	}()
}

// execOrAttach runs the channel.k8s.io family of protocols; exec and attach
// are identical on the wire.
func execOrAttach(conn *spdystream.Connection, protocol string, o *options) error {
	var wg waitGroup

	// The error stream comes first. The client never writes to it; the
	// server reports the outcome on it and then closes it.
	errStream, err := openStream(conn, streamHeaders(streamError))
	if err != nil {
		return err
	}
	var errData []byte
	readErrorStream(&wg, errStream, &errData)

	var stdinStream *spdystream.Stream
	if o.stdin {
		if stdinStream, err = openStream(conn, streamHeaders(streamStdin)); err != nil {
			return err
		}
	}
	if o.stdout {
		s, err := openStream(conn, streamHeaders(streamStdout))
		if err != nil {
			return err
		}
		copyOut(&wg, os.Stdout, s, streamStdout)
	}
	if o.stderr {
		s, err := openStream(conn, streamHeaders(streamStderr))
		if err != nil {
			return err
		}
		copyOut(&wg, os.Stderr, s, streamStderr)
	}
	// Only v3 and later have a resize stream.
	if o.tty && (protocol == protoV3 || protocol == protoV4) {
		s, err := openStream(conn, streamHeaders(streamResize))
		if err != nil {
			return err
		}
		if o.resize != nil {
			// json.Encoder (not Marshal) so the message ends in a newline,
			// as the Kubernetes client's messages do. The stream stays open
			// because a real client would keep sending sizes on it.
			if err := json.NewEncoder(s).Encode(o.resize); err != nil {
				return fmt.Errorf("sending terminal size: %w", err)
			}
		}
	} else if o.resize != nil {
		fmt.Fprintf(os.Stderr, "note: -resize ignored, %s has no resize stream\n", protocol)
	}

	// Input starts flowing only once the session is fully set up.
	if stdinStream != nil {
		copyIn(stdinStream, streamStdin)
	}

	wg.Wait()
	if wg.err != nil {
		return wg.err
	}
	if protocol == protoV4 {
		return statusToExit(errData)
	}
	// Before v4 the error stream carries plain text; no text means success.
	if len(errData) > 0 {
		return failf(exitProtocol, "%s", errData)
	}
	return nil
}

// status is the subset of a Kubernetes metav1.Status that v4 uses on the
// error stream.
type status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
	Details *struct {
		Causes []struct {
			// The Go field in Kubernetes is Type, but it is serialised as
			// "reason".
			Type    string `json:"reason"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// statusToExit turns the v4 error-stream content into the exit outcome.
func statusToExit(data []byte) error {
	// A server that closes the error stream without writing anything has
	// reported no error, as with the older protocols.
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	var st status
	if err := json.Unmarshal(data, &st); err != nil {
		return failf(exitProtocol, "error stream: invalid status %q: %v", data, err)
	}
	switch st.Status {
	case "Success":
		return nil
	case "Failure":
		if st.Reason != "NonZeroExitCode" {
			msg := st.Message
			if msg == "" {
				msg = string(data)
			}
			return failf(exitProtocol, "%s", msg)
		}
		if st.Details != nil {
			for _, c := range st.Details.Causes {
				if c.Type != "ExitCode" {
					continue
				}
				code, err := strconv.Atoi(c.Message)
				// Zero would silently turn a reported failure into
				// success, so it is a protocol error here.
				if err != nil || code <= 0 {
					return failf(exitProtocol, "error stream: bad exit code %q", c.Message)
				}
				// The remote command's own stderr already said whatever it
				// had to say; exit quietly with its status.
				return &exitError{code: code}
			}
		}
		return failf(exitProtocol, "error stream: NonZeroExitCode without an ExitCode cause: %s", data)
	default:
		return failf(exitProtocol, "error stream: unexpected status %q: %s", st.Status, data)
	}
}

// portForward forwards local stdin/stdout to one remote port.
func portForward(conn *spdystream.Connection, o *options) error {
	// Every port-forward stream names its port and the request it belongs
	// to; with one connection per run the request id is always 0.
	headers := func(kind string) http.Header {
		h := streamHeaders(kind)
		h.Set(headerPort, strconv.Itoa(o.port))
		h.Set(headerRequestID, "0")
		return h
	}
	var wg waitGroup

	errStream, err := openStream(conn, headers(streamError))
	if err != nil {
		return err
	}
	var errData []byte
	readErrorStream(&wg, errStream, &errData)

	data, err := openStream(conn, headers(streamData))
	if err != nil {
		return err
	}
	copyOut(&wg, os.Stdout, data, streamData)
	copyIn(data, streamData)

	wg.Wait()
	if wg.err != nil {
		return wg.err
	}
	if len(errData) > 0 {
		return failf(exitProtocol, "portforward error: %s", errData)
	}
	return nil
}
