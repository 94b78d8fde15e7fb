// Command clustertool does the harness's steps that want a library rather
// than a shell: it builds the pod image (go-containerregistry), and it
// talks to the API server (client-go) to create the test ServiceAccounts,
// their RBAC and tokens, and to wait for the Node.
//
//	clustertool image -binary FILE -path /pause -ref REF -o IMAGE.tar
//	clustertool bootstrap -kubeconfig FILE -tokens DIR
//	clustertool wait-node -kubeconfig FILE -node NAME -timeout 2m
//	clustertool wait-pods -kubelet URL -ca F -cert F -key F -names a,b -timeout 2m
//	clustertool perf-pods -kubeconfig FILE -replicas 100   (0: delete them)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clustertool image|bootstrap|wait-node|wait-pods|perf-pods [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var run func(context.Context) error
	switch os.Args[1] {
	case "image":
		run = imageCommand(fs)
	case "bootstrap":
		run = bootstrapCommand(fs)
	case "wait-node":
		run = waitNodeCommand(fs)
	case "wait-pods":
		run = waitPodsCommand(fs)
	case "perf-pods":
		run = perfPodsCommand(fs)
	default:
		fmt.Fprintf(os.Stderr, "clustertool: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	_ = fs.Parse(os.Args[2:])
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "clustertool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
