// Command gofetch downloads one stored image with the Go client, several
// times, and prints MB/s per run: the GetImageFile figure measured with
// a client that is not itself the bottleneck (the Python client copies every
// chunk into a message object on one core).
//
//	gofetch -server 127.0.0.1:PORT -runs 5 IMAGE_ID
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	codeximage "github.com/codex-image-server/codex-image-server/clients/go"
)

func main() {
	server := flag.String("server", codeximage.DefaultTarget, "gRPC address host:port")
	runs := flag.Int("runs", 5, "downloads to time")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gofetch [-server host:port] [-runs N] IMAGE_ID")
		os.Exit(2)
	}
	c, err := codeximage.Dial(*server)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	for i := 0; i < *runs; i++ {
		started := time.Now()
		// Download checks size and sha256 as every caller does.
		info, err := c.Download(context.Background(), flag.Arg(0), io.Discard)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%.1f\n", float64(info.TotalSize)/(1<<20)/time.Since(started).Seconds())
	}
}
