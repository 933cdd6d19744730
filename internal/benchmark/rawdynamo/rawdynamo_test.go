package rawdynamo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/stampede-cache/stampede/internal/dynamostore"
)

func TestConditionFailed(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"other API error", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, false},
		{"condition", &smithy.GenericAPIError{Code: "ConditionalCheckFailedException"}, true},
		{"wrapped condition", fmt.Errorf("put: %w", &smithy.GenericAPIError{Code: "ConditionalCheckFailedException"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConditionFailed(tt.err); got != tt.want {
				t.Errorf("ConditionFailed(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestRecordSendCount records a request a caller makes through the SDK
// (nothing is sent), sends it by name with another client, and counts
// that client's attempts. The endpoint is a closed port: the send fails,
// after at least one attempt.
func TestRecordSendCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const closed = "http://127.0.0.1:9"
	rec := &Recorder{}
	recording, err := NewClient(ctx, closed, rec.Install)
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamostore.EnsureTable(ctx, recording, "t"); !errors.Is(err, errRecorded) {
		t.Fatalf("EnsureTable over the recorder: %v, want the recorder's error", err)
	}
	recorded := rec.Take()
	if len(recorded) != 1 || recorded[0].Operation != "CreateTable" {
		t.Fatalf("recorded %+v, want one CreateTable", recorded)
	}
	if again := rec.Take(); len(again) != 0 {
		t.Errorf("Take twice: %+v", again)
	}

	counter := &Counter{}
	db, err := NewClient(ctx, closed, counter.Install)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, cancelSend := context.WithTimeout(ctx, 2*time.Second)
	defer cancelSend()
	if err := Send(sendCtx, db, recorded[0]); err == nil {
		t.Error("Send to a closed port: want an error")
	}
	if c := counter.Snapshot(); c.Other < 1 || c.GetItem != 0 || c.UpdateItem != 0 {
		t.Errorf("counts %+v, want at least one attempt of another operation", c)
	}
	if err := Send(ctx, db, Request{Operation: "NoSuchOperation", input: 1}); err == nil {
		t.Error("Send of an unknown operation: want an error")
	}
	if err := Send(ctx, db, Request{Operation: "GetItem"}); err == nil {
		t.Error("Send without an input: want an error")
	}
}
