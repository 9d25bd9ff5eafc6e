using Engine.WebhookReceiver;

// engine-webhook-receiver --url http://127.0.0.1:8787/hooks/engine --store DIR --secret-env NAME
// Receives the engine's webhook calls at --url, checks each one's signature and Idempotency-Key as the webhook
// destination documents, appends the records to DIR/received.jsonl and answers per record. Stops on Ctrl-C or
// SIGTERM and prints what it received.
return await ReceiverProgram.RunAsync(args, Console.Out, Console.Error);
