const { Client } = require("pg");
const { useDatabase } = require("pglease/jest");

const db = useDatabase(); // a database fresh from the template for every test
test("signup", async () => {
  const client = new Client({ connectionString: db.dsn });
  await client.connect();
  await client.query("INSERT INTO accounts (email) VALUES ('new@example.com')");
  await client.end();
});
