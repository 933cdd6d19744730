package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
)

func (a *app) newGetCmd() *cobra.Command {
	var (
		consistency  string
		minVersion   int64
		maxStaleness time.Duration
		verify       bool
	)
	cmd := &cobra.Command{
		Use:     "get [flags] KEY",
		Short:   "Print a key's cached entry",
		Long:    "Print the cached entry of KEY. A miss exits 3 with nothing on stdout.",
		GroupID: groupCache,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, entryFieldSet())
	fl := cmd.Flags()
	fl.StringVar(&consistency, "consistency", "", "strong (the default) or eventual (half the cost; may miss writes of the last second)")
	fl.Int64Var(&minVersion, "min-version", 0, "with --consistency eventual: never answer older than this version")
	fl.DurationVar(&maxStaleness, "max-staleness", 0, "may be answered from the service's memory, at most this old (1ms to 1m)")
	fl.BoolVar(&verify, "verify", false, "check that the output object exists (managed buckets only); a dangling entry is removed")
	_ = cmd.RegisterFlagCompletionFunc("consistency", cobra.FixedCompletions([]string{"strong", "eventual"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		switch consistency {
		case "", string(client.ConsistencyStrong), string(client.ConsistencyEventual):
		default:
			return usageErrorf("--consistency must be strong or eventual, not %q", consistency)
		}
		if minVersion < 0 || maxStaleness < 0 {
			return usageErrorf("--min-version and --max-staleness must not be negative")
		}
		cl, err := f.client()
		if err != nil {
			return err
		}
		e, err := cl.Get(cmd.Context(), f.scope(), f.key, &client.GetOptions{
			Consistency:  client.Consistency(consistency),
			MinVersion:   minVersion,
			MaxStaleness: maxStaleness,
			Verify:       verify,
		})
		if err != nil {
			ce := f.fail(err)
			var apiErr *client.APIError
			if ce.code == exitMiss && errors.As(err, &apiErr) && errorField(apiErr) == "key" {
				ce.msg = fmt.Sprintf("not found: no cached entry for %q", f.key)
			}
			return ce
		}
		return f.out.print(a.stdout, e, entryFields(e))
	})
	return cmd
}

func (a *app) newPutCmd() *cobra.Command {
	var (
		m                        metadataFlags
		ifMatch, fence           int64
		owner                    string
		release                  bool
		deleteBlob, verifyOutput bool
	)
	cmd := &cobra.Command{
		Use:   "put [flags] --output-uri s3://BUCKET/KEY KEY",
		Short: "Store where a key's output lives",
		Long: `Store where KEY's output lives. When an entry exists and neither --overwrite,
--max-age nor --if-match allow replacing it, exit 1 and show that entry.`,
		GroupID: groupCache,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, entryFieldSet("result"))
	fl := cmd.Flags()
	m.register(fl, "where the output lives, s3://bucket/key (required)")
	fl.Int64Var(&ifMatch, "if-match", 0, "replace the entry only if it has this version (compare-and-set)")
	fl.StringVar(&owner, "owner", "", "fenced put: only while this owner holds the key's reservation")
	fl.Int64Var(&fence, "fence", 0, "with --owner: only while the reservation has this fence")
	fl.BoolVar(&release, "release", false, "with --owner: release the reservation in the same write")
	fl.BoolVar(&deleteBlob, "delete-blob", false, "delete the replaced entry's output object (managed buckets, this project and domain only)")
	fl.BoolVar(&verifyOutput, "verify-output", false, "refuse the put unless the output object exists (managed buckets, this project and domain only)")
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		if owner == "" && (fence != 0 || release) {
			return usageErrorf("--fence and --release need --owner")
		}
		if m.outputURI == "" {
			return usageErrorf("--output-uri is required")
		}
		if err := m.check(); err != nil {
			return err
		}
		cl, err := f.client()
		if err != nil {
			return err
		}
		res, err := cl.Put(cmd.Context(), f.scope(), f.key, client.PutRequest{
			OutputURI:    m.outputURI,
			Metadata:     m.metadata(),
			Overwrite:    m.overwrite,
			MaxAge:       m.maxAge,
			TTL:          m.ttl,
			IfMatch:      ifMatch,
			OwnerID:      owner,
			Fence:        fence,
			Release:      release,
			DeleteBlob:   deleteBlob,
			VerifyOutput: verifyOutput,
		})
		if err != nil {
			return f.fail(err)
		}
		if res.OutputDeleteFailed {
			fmt.Fprintln(a.stderr, "stampede put: warning: the replaced output object could not be deleted (it is orphaned)")
		}
		result := "overwritten"
		if res.Created {
			result = "created"
		}
		return f.out.print(a.stdout, res.Entry, append([]field{{"result", result}}, entryFields(&res.Entry)...))
	})
	return cmd
}

func (a *app) newDeleteCmd() *cobra.Command {
	var (
		ifMatch    int64
		deleteBlob bool
	)
	cmd := &cobra.Command{
		Use:   "delete [flags] KEY",
		Short: "Delete a key's cached entry",
		Long: `Delete the cached entry of KEY (and, with --delete-blob, its output object).
Deleting a missing entry is not an error: it prints deleted false.`,
		GroupID: groupCache,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, fieldSet{names: []string{"deleted", "output_deleted"}})
	cmd.Flags().Int64Var(&ifMatch, "if-match", 0, "delete the entry only if it has this version")
	cmd.Flags().BoolVar(&deleteBlob, "delete-blob", false, "delete the output object too (managed buckets, this project and domain only)")
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		cl, err := f.client()
		if err != nil {
			return err
		}
		res, err := cl.Delete(cmd.Context(), f.scope(), f.key, &client.DeleteOptions{IfMatch: ifMatch, DeleteBlob: deleteBlob})
		if err != nil {
			return f.fail(err)
		}
		fields := []field{{"deleted", strconv.FormatBool(res.Deleted)}}
		if res.OutputDeleted != nil {
			fields = append(fields, field{"output_deleted", strconv.FormatBool(*res.OutputDeleted)})
		}
		return f.out.print(a.stdout, res, fields)
	})
	return cmd
}

func (a *app) newReserveCmd() *cobra.Command {
	var (
		owner     string
		heartbeat time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reserve [flags] KEY",
		Short: "Acquire or extend a key's reservation",
		Long: `Acquire (or, for the same owner, extend) the reservation of KEY. Prints the
reservation, or the holder's when another owner holds it; then exits 1.`,
		GroupID: groupRes,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, reservationFieldSet("acquired"))
	cmd.Flags().StringVar(&owner, "owner", a.getenv(envOwnerID), "owner ID (env "+envOwnerID+"); default: host name plus a random suffix")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat", 0, "heartbeat interval to ask for; the server clamps it (default: the server's)")
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		if heartbeat < 0 {
			return usageErrorf("--heartbeat must not be negative")
		}
		if owner == "" {
			owner = client.NewOwnerID()
		}
		cl, err := f.client()
		if err != nil {
			return err
		}
		res, err := cl.Reserve(cmd.Context(), f.scope(), f.key, client.ReserveRequest{OwnerID: owner, Heartbeat: heartbeat})
		if err != nil {
			return f.fail(err)
		}
		if err := f.out.print(a.stdout, res, append([]field{{"acquired", strconv.FormatBool(res.Acquired)}}, reservationFields(&res.Reservation)...)); err != nil {
			return err
		}
		if !res.Acquired {
			r := res.Reservation
			return exitErrorf(exitFailure, "%q is held by %s (fence %d) until %s", f.key, r.OwnerID, r.Fence, formatTime(r.ExpiresAt))
		}
		return nil
	})
	return cmd
}

func (a *app) newReleaseCmd() *cobra.Command {
	var owner string
	cmd := &cobra.Command{
		Use:   "release [flags] --owner OWNER KEY",
		Short: "Release a key's reservation",
		Long: `Release OWNER's reservation of KEY. Releasing a reservation that is missing
or held by another owner is not an error: it prints released false.`,
		GroupID: groupRes,
		Args:    keyArgs,
	}
	f := a.addClientFlags(cmd, fieldSet{names: []string{"released"}})
	cmd.Flags().StringVar(&owner, "owner", a.getenv(envOwnerID), "owner ID (env "+envOwnerID+"; required)")
	cmd.RunE = action(func(cmd *cobra.Command, args []string) error {
		if err := f.resolve(args); err != nil {
			return err
		}
		if owner == "" {
			return usageErrorf("--owner is required (or set %s)", envOwnerID)
		}
		cl, err := f.client()
		if err != nil {
			return err
		}
		released, err := cl.Release(cmd.Context(), f.scope(), f.key, client.ReleaseRequest{OwnerID: owner})
		if err != nil {
			return f.fail(err)
		}
		return f.out.print(a.stdout, map[string]bool{"released": released}, []field{{"released", strconv.FormatBool(released)}})
	})
	return cmd
}
