// Command validate loads a compose file as Docker Compose v2 does (compose-go: the Compose
// Specification's JSON schema, interpolation, normalization, consistency checks) and prints the
// resulting project as JSON, for deploy/compose/test:
//
//	go run . FILE [KEY=VALUE ...]
//
// The variables are the whole environment the file is interpolated with; nothing is read from
// the caller's environment or a .env file. Exits 1 with the loader's message when the file is
// not a valid compose file.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate FILE [KEY=VALUE ...]")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions([]string{os.Args[1]},
		cli.WithEnv(os.Args[2:]),
		cli.WithDiscardEnvFile,
		cli.WithConsistency(true),
		cli.WithNormalization(true),
		cli.WithInterpolation(true),
	)
	if err == nil {
		loaded, loadErr := options.LoadProject(context.Background())
		if loadErr != nil {
			err = loadErr
		} else {
			out, marshalErr := loaded.MarshalJSON()
			if marshalErr != nil {
				err = marshalErr
			} else {
				os.Stdout.Write(out)
				fmt.Println()
				return
			}
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
	os.Exit(1)
}
