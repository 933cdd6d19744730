// Command request is the floor of a Stampede function that sends requests:
// the dynamodb floor plus one conditional UpdateItem per invocation. A
// program that never sends a request lets the linker drop every request's
// code (signing, credential providers' refresh, the operation's
// serializers); this one keeps what any function that talks to DynamoDB
// must link.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "load AWS configuration:", err)
		os.Exit(1)
	}
	db := dynamodb.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, key string) (string, error) {
		out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(os.Getenv("STAMPEDE_TABLE")),
			Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
			UpdateExpression:          aws.String("SET #n = if_not_exists(#n, :zero) + :one"),
			ConditionExpression:       aws.String("attribute_not_exists(#o)"),
			ExpressionAttributeNames:  map[string]string{"#n": "n", "#o": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": &types.AttributeValueMemberN{Value: "0"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
			ReturnValues:              types.ReturnValueAllNew,
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprint(len(out.Attributes)), nil
	})
}
