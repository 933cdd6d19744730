package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/stampede-cache/stampede/client"
)

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("get", "[flags] KEY", "Print the cached entry of KEY. Exits 1 when there is none.", stdout, stderr)
	consistency := c.fs.String("consistency", "", "strong (the default) or eventual (half the cost; may miss writes of the last second)")
	minVersion := c.fs.Int64("min-version", 0, "with --consistency eventual: never answer older than this version")
	maxStaleness := c.fs.Duration("max-staleness", 0, "may be answered from the service's memory, at most this old (1ms to 1m)")
	verify := c.fs.Bool("verify", false, "check that the output object exists (managed buckets only); a dangling entry is removed")
	if code, ok := c.parse(args); !ok {
		return code
	}
	switch *consistency {
	case "", string(client.ConsistencyStrong), string(client.ConsistencyEventual):
	default:
		return c.usage("--consistency must be strong or eventual, not %q", *consistency)
	}
	if *minVersion < 0 || *maxStaleness < 0 {
		return c.usage("--min-version and --max-staleness must not be negative")
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	e, err := cl.Get(ctx, c.scope(), c.key, &client.GetOptions{
		Consistency:  client.Consistency(*consistency),
		MinVersion:   *minVersion,
		MaxStaleness: *maxStaleness,
		Verify:       *verify,
	})
	if errors.Is(err, client.ErrNotFound) {
		fmt.Fprintf(stderr, "stampede get: not found: no cached entry for %q\n", c.key)
		return exitFailure
	}
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(e)
	} else {
		c.printFields(entryFields(e))
	}
	return exitOK
}

func runPut(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("put", "[flags] --output-uri s3://BUCKET/KEY KEY",
		"Store where KEY's output lives. Exits 1 when an entry exists and neither\n--overwrite nor --max-age allow replacing it.", stdout, stderr)
	m := metadataFlags{outputURIHelp: "where the output lives, s3://bucket/key (required)"}
	m.register(c.fs)
	ifMatch := c.fs.Int64("if-match", 0, "replace the entry only if it has this version (compare-and-set)")
	owner := c.fs.String("owner", "", "fenced put: only while this owner holds the key's reservation")
	fence := c.fs.Int64("fence", 0, "with --owner: only while the reservation has this fence")
	release := c.fs.Bool("release", false, "with --owner: release the reservation in the same write")
	deleteBlob := c.fs.Bool("delete-blob", false, "delete the replaced entry's output object (managed buckets only)")
	verifyOutput := c.fs.Bool("verify-output", false, "refuse the put unless the output object exists (managed buckets only)")
	if code, ok := c.parse(args); !ok {
		return code
	}
	if *owner == "" && (*fence != 0 || *release) {
		return c.usage("--fence and --release need --owner")
	}
	if code, ok := m.check(c); !ok {
		return code
	}
	if m.outputURI == "" {
		return c.usage("--output-uri is required")
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	res, err := cl.Put(ctx, c.scope(), c.key, client.PutRequest{
		OutputURI:    m.outputURI,
		Metadata:     m.metadata(),
		Overwrite:    m.overwrite,
		MaxAge:       m.maxAge,
		TTL:          m.ttl,
		IfMatch:      *ifMatch,
		OwnerID:      *owner,
		Fence:        *fence,
		Release:      *release,
		DeleteBlob:   *deleteBlob,
		VerifyOutput: *verifyOutput,
	})
	if err != nil {
		return c.fail(err)
	}
	if res.OutputDeleteFailed {
		fmt.Fprintf(stderr, "stampede put: warning: the replaced output object could not be deleted (it is orphaned)\n")
	}
	if c.json {
		c.printJSON(res.Entry)
		return exitOK
	}
	result := "overwritten"
	if res.Created {
		result = "created"
	}
	c.printFields(append([]field{{"result", result}}, entryFields(&res.Entry)...))
	return exitOK
}

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("delete", "[flags] KEY", "Delete the cached entry of KEY (and, with --delete-blob, its output object).\nDeleting a missing entry is not an error: it prints deleted false.", stdout, stderr)
	ifMatch := c.fs.Int64("if-match", 0, "delete the entry only if it has this version")
	deleteBlob := c.fs.Bool("delete-blob", false, "delete the output object too (managed buckets only)")
	if code, ok := c.parse(args); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	res, err := cl.Delete(ctx, c.scope(), c.key, &client.DeleteOptions{IfMatch: *ifMatch, DeleteBlob: *deleteBlob})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(res)
		return exitOK
	}
	fields := []field{{"deleted", strconv.FormatBool(res.Deleted)}}
	if res.OutputDeleted != nil {
		fields = append(fields, field{"output_deleted", strconv.FormatBool(*res.OutputDeleted)})
	}
	c.printFields(fields)
	return exitOK
}

func runReserve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("reserve", "[flags] KEY",
		"Acquire (or, for the same owner, extend) the reservation of KEY. Prints the\nreservation, or the holder's when another owner holds it; then exits 1.", stdout, stderr)
	owner := c.fs.String("owner", os.Getenv(envOwnerID), "owner ID (env "+envOwnerID+"); default: host name plus a random suffix")
	heartbeat := c.fs.Duration("heartbeat", 0, "heartbeat interval to ask for; the server clamps it (default: the server's)")
	if code, ok := c.parse(args); !ok {
		return code
	}
	if *heartbeat < 0 {
		return c.usage("--heartbeat must not be negative")
	}
	if *owner == "" {
		*owner = client.NewOwnerID()
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	res, err := cl.Reserve(ctx, c.scope(), c.key, client.ReserveRequest{OwnerID: *owner, Heartbeat: *heartbeat})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(res)
	} else {
		c.printFields(append([]field{{"acquired", strconv.FormatBool(res.Acquired)}}, reservationFields(&res.Reservation)...))
	}
	if !res.Acquired {
		r := res.Reservation
		fmt.Fprintf(stderr, "stampede reserve: %q is held by %s (fence %d) until %s\n", c.key, r.OwnerID, r.Fence, formatTime(r.ExpiresAt))
		return exitFailure
	}
	return exitOK
}

func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCLI("release", "[flags] --owner OWNER KEY",
		"Release OWNER's reservation of KEY. Releasing a reservation that is missing\nor held by another owner is not an error: it prints released false.", stdout, stderr)
	owner := c.fs.String("owner", os.Getenv(envOwnerID), "owner ID (env "+envOwnerID+"; required)")
	if code, ok := c.parse(args); !ok {
		return code
	}
	if *owner == "" {
		return c.usage("--owner is required (or set %s)", envOwnerID)
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	released, err := cl.Release(ctx, c.scope(), c.key, client.ReleaseRequest{OwnerID: *owner})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		c.printJSON(map[string]bool{"released": released})
	} else {
		c.printFields([]field{{"released", strconv.FormatBool(released)}})
	}
	return exitOK
}
