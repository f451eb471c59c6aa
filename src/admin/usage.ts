/**
 * `ipphone-admin --help` texts: one for the command, one per subcommand.
 */

const COMMON = `Common options (config, pointers, status):
  --broker URL            mqtt:, mqtts:, ws: or wss: URL of the broker (required)
  --prefix P              topic prefix (default ipphone/v1)
  --mqtt-version 4|5      MQTT protocol version (default 5; 4 for brokers like aedes)
  --username NAME         broker user name
  --password TEXT         broker password (visible in ps; prefer --password-file)
  --password-file FILE    read the broker password from FILE (first line)
  --ca FILE               PEM CA certificate(s) that sign the broker's certificate
                          (mqtts:/wss: only; default: the system's CAs)
  --cert FILE             PEM client certificate; its CN is the identity the broker's
                          ACL sees (an operator's name, see ipphone-admin acl)
  --tls-key FILE          PEM private key of --cert (give both or neither)
  --connect-timeout MS    give up connecting after MS (default 10000)
  --help                  print this text`;

export const SUBCOMMAND_USAGE = {
  keygen: `Usage: ipphone-admin keygen --out FILE [--force]

Write a new Ed25519 key pair: FILE the private key (PKCS#8 PEM, mode 0600) and
FILE.pub the public key (SPKI PEM), the formats openssl and node:crypto write.
Refuses to overwrite either file unless --force. Prints the suggested key id
(the file name without .pem) and the base64 of the raw 32-byte public key, as
they go in an agent's trust.keys.
`,
  config: `Usage: ipphone-admin config --broker URL --phone ID --key FILE --kid ID --file PATCH.json
                            [--version N] [--expires-in MS] [--timeout MS]

Sign the partial agent config in PATCH.json and send it to phone ID on
P/phone/ID/config (QoS 1) as { kid, body, sig }, body { version, config,
expires?, phone }. Waits for P/phone/ID/config/result with that version and
prints it as one JSON line.
  --key FILE              Ed25519 private key (PKCS#8 PEM)
  --kid ID                the key's id in the phone's trust.keys
  --version N             body version (default: now, ms since the epoch, or one
                          above the configVersion of the phone's retained status
                          when that is greater); must be greater than the
                          version the phone holds
  --expires-in MS         the phone refuses the body after now + MS
  --timeout MS            wait this long for the result (default 15000)
Exit 0 when the phone applied it, 1 when it refused it (the error is printed) or
no result came in time, 2 on bad arguments.

${COMMON}
`,
  pointers: `Usage: ipphone-admin pointers --broker URL --phone ID --key FILE --kid ID --list LIST.json
                              [--reason admin] [--version N] [--expires-in MS]
                              [--wait] [--timeout MS] [--rebase]

Check the pointer list in LIST.json (a JSON array of { id, broker, services },
1 to 16, the first is the primary), sign it and push it to phone ID on
P/phone/ID/pointers (QoS 1), body { version, reason, list, expires?, phone }.
A list with problems is refused before anything is sent, every problem named.
  --reason R              admin (default), failover or rebalance
  --version N             body version (default: now, ms since the epoch, or one
                          above the pointersVersion of the phone's retained status
                          when that is greater: a clock behind the call managers'
                          does not make the push stale)
  --expires-in MS         the phone refuses the body after now + MS
  --wait                  wait until the phone's status shows this version (exit 0)
                          or the phone reports it rejected the push (exit 1)
  --timeout MS            how long --wait waits (default 15000)
  --rebase                recovery for a phone holding a version too far ahead (no
                          call manager may issue above its clock + 24 h, so the phone
                          refuses every list): the list at --version (default: now)
                          REPLACES the pointersVersion of the phone's retained status,
                          though lower. The body names that version (rebase), the
                          phone and expires (default in 10 min, at most 1 h): the
                          phone takes it once, only while it holds exactly that
                          version, so a recorded rebase never rolls it back later
Without --wait, exit 0 once the broker has the message.

${COMMON}
`,
  status: `Usage: ipphone-admin status --broker URL [--phone ID] [--once] [--timeout MS]
                            [--quiet MS] [--json | --table]

Print phones' status as it arrives (the retained ones first). On a terminal, a
table: PHONE ONLINE STATE HOME SERVICES SIP POINTERS CONFIG REHOMES (with --once,
one row per phone sorted by id, printed when the retained ones have arrived;
otherwise a row per status as it arrives, with the time it was heard). To a pipe
or a file, one JSON line each: { phone, online, home, services, state,
pointersVersion, … }.
  --phone ID              only this phone (default: every phone under the prefix)
  --once                  exit once the retained statuses have arrived (no message
                          for --quiet MS, default 1000); with --phone, exit 1 when
                          the phone has no status
  --json                  JSON lines even on a terminal (for scripts)
  --table                 the table even to a pipe or a file
  --timeout MS            stop after MS (exit 0)
Otherwise runs until SIGINT/SIGTERM.

${COMMON}
`,
  acl: `Usage: ipphone-admin acl --config CM.json [--operator NAME]...

Print a mosquitto acl_file for the call-manager group of CM.json (its group and
topicPrefix), for a broker that takes identities from client certificates
(require_certificate true, use_identity_as_username true,
use_username_as_clientid true; see deploy/mosquitto/). Each identity may
publish and read only what its role needs:
  call manager (each group member's id): write its own state and load and the
      phones' ack and pointers; read its keep-alives and every CM's state/load
  phone (any other CN, a pattern on %u): write its own status, event,
      config/result and keep-alives naming it (P/cm/+/keepalive/ID); read its
      own ack, pointers, config and the CMs' state
  operator (each --operator NAME): write phones' config and pointers; read P/#
Ids mosquitto cannot pattern-match safely (with + # / whitespace, control
characters, or empty; CVE-2017-7650) are refused, every one named.
  --config FILE           the call manager config (its signingKey is not read)
  --operator NAME         an operator certificate's CN; repeat for more
Exit 0 with the file on stdout, 1 on a bad config or id, 2 on bad arguments.
`,
} as const;

export type Subcommand = keyof typeof SUBCOMMAND_USAGE;

export const USAGE = `Usage:
  ipphone-admin keygen --out FILE [--force]
                                   a new Ed25519 key pair (FILE private, FILE.pub public)
  ipphone-admin config --broker URL --phone ID --key FILE --kid ID --file PATCH.json
                                   sign and send a config change, wait for its result;
                                   exit 0 only if the phone applied it
  ipphone-admin pointers --broker URL --phone ID --key FILE --kid ID --list LIST.json
                       [--reason admin] [--wait]
                                   sign and push a pointer list
  ipphone-admin status --broker URL [--phone ID] [--once]
                                   print phones' status as it arrives
  ipphone-admin acl --config CM.json [--operator NAME]...
                                   print a mosquitto acl_file for that group
  ipphone-admin SUBCOMMAND --help  the options of one subcommand
  ipphone-admin --help             print this text

Commands that take --broker also take --ca, --cert, --tls-key (TLS) and
--username, --password, --password-file.

Exit 0 on success, 1 on failure (refused, timed out, unreachable), 2 on bad arguments.
`;
