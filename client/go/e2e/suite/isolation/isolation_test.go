// Tests that run at the same time, each writing to its database and finding only its own
// writes. `go test -p 4` runs this package's process beside the others; within it the tests
// run in parallel.
package isolation

import (
	"fmt"
	"testing"

	"github.com/pglease/pglease/client/go/e2e/suite/internal/suite"
	"github.com/pglease/pglease/client/go/pgleasetest"
)

func writer(t *testing.T) {
	t.Parallel()
	db := pgleasetest.New(t, suite.Config())
	suite.Claim(t, db)
	for _, write := range []string{
		fmt.Sprintf("UPDATE accounts SET email = '%s@' || id", t.Name()[len("TestWriter"):]),
		"DELETE FROM tasks WHERE id = 3",
		"SELECT setval('invoice_numbers', 5000)",
		"CREATE TABLE private_table (n int)",
	} {
		if _, err := db.Exec(write); err != nil {
			t.Fatalf("%s: %v", write, err)
		}
	}
}

func TestWriter01(t *testing.T) { writer(t) }
func TestWriter02(t *testing.T) { writer(t) }
func TestWriter03(t *testing.T) { writer(t) }
func TestWriter04(t *testing.T) { writer(t) }
func TestWriter05(t *testing.T) { writer(t) }
func TestWriter06(t *testing.T) { writer(t) }
func TestWriter07(t *testing.T) { writer(t) }
func TestWriter08(t *testing.T) { writer(t) }

func TestSubtestsGetADatabaseEach(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"first", "second", "third"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			suite.Claim(t, pgleasetest.New(t, suite.Config()))
		})
	}
}
