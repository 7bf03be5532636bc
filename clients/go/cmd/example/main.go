// Command example generates images with the Go client and saves them:
//
//	go run ./cmd/example -server 127.0.0.1:17342 -n 2 -size 2K -aspect 16:9 "a red fox"
//
// The API key comes from $CODEX_IMAGE_API_KEY when the server needs one.
// Ctrl-C cancels the call, and the server stops its codex runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	codeximage "github.com/codex-image-server/codex-image-server/clients/go"
	v1 "github.com/codex-image-server/codex-image-server/clients/go/codeximagev1"
)

func main() {
	server := flag.String("server", codeximage.DefaultTarget, "gRPC address host:port")
	n := flag.Int("n", 1, "number of candidates, 1-4")
	size := flag.String("size", "", `"auto", "WxH" or "1K", "2K", "4K"`)
	aspect := flag.String("aspect", "", `with a preset: "16:9", "landscape", ...`)
	out := flag.String("o", ".", "output directory")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := codeximage.Dial(*server, codeximage.WithAPIKey(os.Getenv("CODEX_IMAGE_API_KEY")))
	if err != nil {
		fail(err)
	}
	defer c.Close()

	req := &v1.GenerateRequest{Prompt: strings.Join(flag.Args(), " "), Count: int32(*n), Size: *size, Aspect: *aspect}
	res, err := c.Generate(ctx, req, func(ev *v1.GenerateResponse) {
		if p := ev.GetProgress(); p != nil {
			fmt.Fprintf(os.Stderr, "candidate %d: %s %s\n", p.GetCandidateIndex()+1, p.GetStage(), p.GetPhase())
		}
	})
	if err != nil {
		fail(err)
	}
	for _, img := range res.Images {
		path := filepath.Join(*out, fmt.Sprintf("%s-%d.png", img.GetRequestId(), img.GetIndex()+1))
		if _, err := c.DownloadFile(ctx, img.GetId(), path); err != nil {
			fail(err)
		}
		fmt.Println(path)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "example:", err) // *codeximage.Error prints its reason and each bad field
	os.Exit(1)
}
