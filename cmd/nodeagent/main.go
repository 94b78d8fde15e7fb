// Command nodeagent serves host, container and kubelet metrics of one node
// from one TLS-protected endpoint. This package owns flags, wiring and
// subcommands; the collectors live below collectors/, one package per layer,
// and register themselves through collectors/all.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	// Every collector nodeagent ships registers itself.
	_ "github.com/nodeagent/nodeagent/collectors/all"
)

func main() {
	stampVersion()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(runProcess(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, true))
}

// run parses args and runs the chosen subcommand; it returns the exit code.
// It leaves the Go runtime's process-wide settings alone, as tests run it
// in theirs, several at once.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runProcess(ctx, args, stdin, stdout, stderr, false)
}

// runProcess is run; with process set, as main runs it, serve also sets
// the process-wide settings (GOMAXPROCS, heap profile sampling).
func runProcess(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, process bool) int {
	c, code := parse(args, stdout, stderr)
	if c == nil {
		return code
	}
	switch c.command {
	case c.serveCmd.FullCommand():
		if err := serve(ctx, c.serve, stderr, nil, process); err != nil {
			fmt.Fprintf(stderr, "nodeagent: %v\n", err)
			return 1
		}
		return 0
	case c.checkCmd.FullCommand():
		return c.check.run(stdin, stdout, stderr)
	case c.doctorCheckCmd.FullCommand(), c.doctorWhyCmd.FullCommand():
		return runDoctor(ctx, c, args, stdout, stderr)
	}
	return 2
}

// cli is the parsed command line.
type cli struct {
	command                                          string
	serveCmd, checkCmd, doctorCheckCmd, doctorWhyCmd *kingpin.CmdClause
	// serve holds the serve flags, which are the application's: doctor
	// reads the same --path.*, --kubelet.* and --kubeconfig.
	serve  *serveOptions
	check  *checkOptions
	doctor *doctorOptions
}

// parse builds the application and parses args. A nil cli means there is
// nothing more to do, with the exit code: --help or --version printed (0),
// or a usage error (2).
func parse(args []string, stdout, stderr io.Writer) (*cli, int) {
	app := kingpin.New("nodeagent", "Serves node, container and kubelet metrics of one Kubernetes node (or bare-metal host) from one endpoint.")
	app.Version(version.Print("nodeagent"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	exited := -1
	app.Terminate(func(code int) { exited = code })

	c := &cli{}
	c.serveCmd = app.Command("serve", "Serve metrics (the default).").Default()
	c.serve = addServeFlags(app)
	c.checkCmd = app.Command("check-metrics", "Parse Prometheus text exposition and lint it with promlint; exits 1 on any problem. Problems on names nodeagent inherits from node_exporter, cAdvisor or the kubelet are excused unless --strict.")
	c.check = addCheckFlags(c.checkCmd)
	c.doctorCheckCmd, c.doctorWhyCmd, c.doctor = addDoctorCommands(app)

	cmd, err := app.Parse(args)
	if exited >= 0 { // --help or --version already printed
		return nil, exited
	}
	if err != nil {
		fmt.Fprintf(stderr, "nodeagent: %v (try --help)\n", err)
		return nil, 2
	}
	c.command = cmd
	return c, 0
}
