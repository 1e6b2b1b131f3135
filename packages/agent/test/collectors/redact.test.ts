// Command lines reported to the hub: secret-looking values are replaced, everything else is kept
// as it was; and the processes collector applies the agent's setting to real processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { processesCollector } from '../../src/collectors/processes.js';
import { REDACTED as R, redactCommand, reportedCommand, secretName } from '../../src/collectors/redact.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };

test('values after secret-named flags, in secret-named variables and in URLs are replaced; the rest is kept', () => {
  const cases: [string, string][] = [
    ['tether agent --hub https://hub:8080 --token tte_AbCdEfGh12345678', `tether agent --hub https://hub:8080 --token ${R}`],
    ['app --token=abc123 --verbose', `app --token=${R} --verbose`],
    ['app --password hunter2 --port 5432', `app --password ${R} --port 5432`],
    ['app -password hunter2', `app -password ${R}`],
    ['app --db-password=x --password-file /run/secrets/db', `app --db-password=${R} --password-file /run/secrets/db`],
    ['app --api-key K1 --apiKey=K2 --client-secret S', `app --api-key ${R} --apiKey=${R} --client-secret ${R}`],
    ['env GITHUB_TOKEN=ghx AWS_SECRET_ACCESS_KEY=a/b PGPASSWORD=pg MYSQL_PWD=m PWD=/home/x HOME=/root run', `env GITHUB_TOKEN=${R} AWS_SECRET_ACCESS_KEY=${R} PGPASSWORD=${R} MYSQL_PWD=${R} PWD=/home/x HOME=/root run`],
    ['sh -c export DEPLOY_KEY=abc; ./deploy.sh', `sh -c export DEPLOY_KEY=${R} ./deploy.sh`],
    ['psql host=db user=app password=s3cret dbname=app', `psql host=db user=app password=${R} dbname=app`],
    ['pg_dump postgres://app:s3cret@db:5432/app', `pg_dump postgres://app:${R}@db:5432/app`],
    ['redis-cli -u redis://:pw@cache:6379', `redis-cli -u redis://:${R}@cache:6379`],
    ['curl https://x/y?token=abc&page=2&sig=zz', `curl https://x/y?token=${R}&page=2&sig=${R}`],
    ['curl -H Authorization: Bearer abc.def https://x', `curl -H Authorization: Bearer ${R} https://x`],
    ['curl -H Authorization:Basic_dXNlcg== https://x', `curl -H Authorization:${R} https://x`],
    ['curl -u admin:pw https://x', `curl -u admin:${R} https://x`],
    ['curl --user=admin:pw https://x', `curl --user=admin:${R} https://x`],
    ['mysql -uroot -pS3cret -h db', `mysql -uroot -p${R} -h db`],
    ['mysql -uroot -p -h db', 'mysql -uroot -p -h db'],
    ['/usr/bin/sshpass -p pw ssh host', `/usr/bin/sshpass -p ${R} ssh host`],
    ['ssh -p 2222 host', 'ssh -p 2222 host'],
    ['docker run -p 8080:80 -e APP_SECRET=x nginx', `docker run -p 8080:80 -e APP_SECRET=${R} nginx`],
    ['java -Djavax.net.ssl.keyStorePassword=changeit -Dfile.encoding=UTF-8 -jar a.jar', `java -Djavax.net.ssl.keyStorePassword=${R} -Dfile.encoding=UTF-8 -jar a.jar`],
    ['worker tta_0123456789abcdefABCDEF and tts_zzzzzzzzzzzz', `worker ${R} and ${R}`],
    ['git clone https://ghp_0123456789abcdefghijABCDEFGHIJ@github.com/x/y', `git clone https://${R}@github.com/x/y`],
    ['client eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', `client ${R}`],
    ['nginx: worker process', 'nginx: worker process'],
    ['/usr/sbin/sshd -D -o MONKEY=1', '/usr/sbin/sshd -D -o MONKEY=1'],
    ['grep authorization /var/log/x', 'grep authorization /var/log/x'],
    ['python3  -m  http.server', 'python3  -m  http.server'],
  ];
  for (const [input, want] of cases) assert.equal(redactCommand(input), want, input);
});

test('secret names: whole words anywhere, short ones only as a part, places are not secrets', () => {
  for (const n of ['TOKEN', 'GITHUB_TOKEN', 'pgpassword', 'db-passwd', 'SSH_KEY', 'apiKey', 'x.auth', 'secret', 'keyStorePassword', 'MYSQL_PWD']) assert.ok(secretName(n), n);
  for (const n of ['PWD', 'OLDPWD', 'MONKEY', 'keyboard', 'port', 'user', 'password-file', 'TOKEN_PATH', 'passive', 'author']) assert.ok(!secretName(n), n);
});

test('the setting: full keeps the line, none keeps only the program', () => {
  const line = '/usr/bin/app --token abc serve';
  assert.equal(reportedCommand(line, 'full'), line);
  assert.equal(reportedCommand(line, 'redacted'), `/usr/bin/app --token ${R} serve`);
  assert.equal(reportedCommand(line, 'none'), '/usr/bin/app');
});

test('real processes: their secrets never reach the report unless the setting is full', async (t) => {
  const secret = 'tte_RealProcessSecret0123456789';
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', '--', '--token', secret, 'DB_PASSWORD=hunter2-real', 'postgres://app:pw-real@db/app'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 100));
  const find = async (mode?: 'full' | 'redacted' | 'none') => {
    const r = await processesCollector(roots, { topN: 500, sockets: false, ...(mode ? { cmdline: mode } : {}) }).collect(Date.now());
    const p = r?.processes.find((x) => x.pid === child.pid);
    assert.ok(p, 'the child is listed');
    return p.command;
  };
  const byDefault = await find();
  assert.equal(byDefault, `${process.execPath} -e setTimeout(() => {}, 60000) -- --token ${R} DB_PASSWORD=${R} postgres://app:${R}@db/app`);
  assert.ok(!/hunter2|pw-real|RealProcessSecret/.test(byDefault));
  assert.equal(await find('redacted'), byDefault);
  assert.ok((await find('full')).includes(secret));
  assert.equal(await find('none'), process.execPath);
});
