// Command interop speaks SPDY/3 frames with Debian's
// github.com/moby/spdystream/spdy (the framer under the Kubernetes client
// stack's streams), so spdy_test can check ctrd's reader and writers against
// it, header compression included.
//
//	interop write  writes a fixed sequence of frames to stdout
//	interop read   reads frames from stdin until EOF; prints one line per frame
package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/moby/spdystream/spdy"
)

func headers(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

func write() error {
	out := bufio.NewWriter(os.Stdout)
	framer, err := spdy.NewFramer(out, nil)
	if err != nil {
		return err
	}
	frames := []spdy.Frame{
		&spdy.SynStreamFrame{StreamId: 1, Priority: 2, Headers: headers("streamtype", "error")},
		&spdy.SynStreamFrame{StreamId: 3, Headers: headers("streamtype", "stdout", "port", "8080")},
		&spdy.SynReplyFrame{CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}, StreamId: 3,
			Headers: headers("status", "200")},
		&spdy.DataFrame{StreamId: 3, Data: []byte("hello")},
		&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin, Data: []byte{}},
		&spdy.HeadersFrame{StreamId: 1, Headers: headers("x-multi", "a", "x-multi", "b")},
		&spdy.PingFrame{Id: 7},
		&spdy.WindowUpdateFrame{StreamId: 3, DeltaWindowSize: 4096},
		&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{{Id: spdy.SettingsInitialWindowSize, Value: 65536}}},
		&spdy.RstStreamFrame{StreamId: 1, Status: spdy.Cancel},
		&spdy.GoAwayFrame{LastGoodStreamId: 3, Status: spdy.GoAwayOK},
	}
	for _, f := range frames {
		if err := framer.WriteFrame(f); err != nil {
			return err
		}
	}
	return out.Flush()
}

func describe(h http.Header) string {
	var parts []string
	for k, v := range h {
		parts = append(parts, strings.ToLower(k)+"="+strings.Join(v, "|"))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func read() error {
	framer, err := spdy.NewFramer(nil, bufio.NewReader(os.Stdin))
	if err != nil {
		return err
	}
	for {
		frame, err := framer.ReadFrame()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch f := frame.(type) {
		case *spdy.SynStreamFrame:
			fmt.Printf("SYN_STREAM %d %d %d %d %s\n", f.StreamId, f.AssociatedToStreamId, f.Priority, f.CFHeader.Flags, describe(f.Headers))
		case *spdy.SynReplyFrame:
			fmt.Printf("SYN_REPLY %d %d %s\n", f.StreamId, f.CFHeader.Flags, describe(f.Headers))
		case *spdy.HeadersFrame:
			fmt.Printf("HEADERS %d %d %s\n", f.StreamId, f.CFHeader.Flags, describe(f.Headers))
		case *spdy.DataFrame:
			fmt.Printf("DATA %d %d %q\n", f.StreamId, f.Flags, f.Data)
		case *spdy.RstStreamFrame:
			fmt.Printf("RST_STREAM %d %d\n", f.StreamId, f.Status)
		case *spdy.SettingsFrame:
			fmt.Printf("SETTINGS %d", f.CFHeader.Flags)
			for _, s := range f.FlagIdValues {
				fmt.Printf(" %d=%d", s.Id, s.Value)
			}
			fmt.Println()
		case *spdy.PingFrame:
			fmt.Printf("PING %d\n", f.Id)
		case *spdy.GoAwayFrame:
			fmt.Printf("GOAWAY %d %d\n", f.LastGoodStreamId, f.Status)
		case *spdy.WindowUpdateFrame:
			fmt.Printf("WINDOW_UPDATE %d %d\n", f.StreamId, f.DeltaWindowSize)
		default:
			fmt.Printf("OTHER %T\n", f)
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: interop write|read")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "write":
		err = write()
	case "read":
		err = read()
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}
