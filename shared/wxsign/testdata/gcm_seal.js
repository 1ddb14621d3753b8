// node /tmp/gcm.js KEY NONCE AAD PLAINTEXT_FILE -> base64(ciphertext || tag)
const crypto = require('crypto'); const fs = require('fs');
const [key, nonce, aad, file] = process.argv.slice(2);
const c = crypto.createCipheriv('aes-256-gcm', Buffer.from(key, 'utf8'), Buffer.from(nonce, 'utf8'));
c.setAAD(Buffer.from(aad, 'utf8'));
const ct = Buffer.concat([c.update(fs.readFileSync(file)), c.final(), c.getAuthTag()]);
process.stdout.write(ct.toString('base64'));
