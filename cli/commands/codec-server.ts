import type { Command } from 'commander';
import { createCodecFromEnv, generateCodecKey } from '../../client/codec.js';
import { startCodecServer } from '../../client/codec-server.js';
import { sluiceEnv } from '../../lib/config.js';

export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description(
      'serve /encode and /decode so the Temporal UI can show encrypted payloads (keys from SLUICE_CODEC_KEYS)',
    )
    .option('--port <port>', 'port to listen on', '8888')
    .option('--host <ip>', 'address to bind', '127.0.0.1')
    .option('--origin <url...>', 'UI origins allowed by CORS', ['http://localhost:8233', 'http://127.0.0.1:8233'])
    .option('--auth-token <token>', 'require "Authorization: Bearer <token>" (default: SLUICE_CODEC_AUTH_TOKEN)')
    .option('--generate-key', 'print a fresh key for SLUICE_CODEC_KEYS and exit')
    .action(
      async (opts: { port: string; host: string; origin: string[]; authToken?: string; generateKey?: boolean }) => {
        if (opts.generateKey) {
          console.log(`SLUICE_CODEC_KEYS=k1:${generateCodecKey()} SLUICE_CODEC_KEY_ID=k1`);
          return;
        }
        const codec = createCodecFromEnv(sluiceEnv);
        if (!codec) {
          throw new Error(
            'the codec is off: set SLUICE_CODEC_KEYS and SLUICE_CODEC_KEY_ID (`sluice codec-server --generate-key` makes a key)',
          );
        }
        const port = Number(opts.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new Error(`--port must be a port number, not "${opts.port}"`);
        const server = await startCodecServer({
          codec,
          port,
          host: opts.host,
          allowedOrigins: opts.origin,
          authToken: opts.authToken ?? sluiceEnv.codecAuthToken,
        });
        console.log(
          `codec server at ${server.url} (keys: ${codec.keyIds.join(', ')}; encrypting with ${codec.encryptKeyId})`,
        );
        console.log(
          `  point the UI at it: server.codecEndpoint in temporal-dev.yml, or --ui-codec-endpoint ${server.url}`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await server.close();
      },
    );
}
