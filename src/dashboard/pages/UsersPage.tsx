import { type FormEvent, useState } from 'react';
import { api, type Role, type User } from '../api.js';
import { when } from '../format.js';
import { useResource } from '../hooks.js';
import { ErrorNote, ListState, ListTable, Panel, ShownOnce, TextField } from '../ui.js';

/** Admins add people: a temporary password is generated and shown once, to hand over privately. */
export function UsersPage() {
  const users = useResource<{ data: User[] }>('/users');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [error, setError] = useState<unknown>(null);
  const [temporary, setTemporary] = useState<{ email: string; password: string } | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const answer = await api<{ user: User; temporary_password: string }>('POST', '/users', { email, role });
      setTemporary({ email: answer.user.email, password: answer.temporary_password });
      setEmail('');
      users.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const rows = users.data?.data ?? [];
  return (
    <>
      <h1>Users</h1>
      {temporary && (
        <ShownOnce
          label={`Temporary password for ${temporary.email}`}
          value={temporary.password}
          onDone={() => setTemporary(null)}
        />
      )}
      <Panel title="Add a user">
        <form className="form" onSubmit={submit}>
          <TextField id="user-email" label="Email" value={email} onChange={setEmail} type="email" required />
          <label htmlFor="user-role">Role</label>
          <select id="user-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value="operator">Operator: accounts, codes, scrapes</option>
            <option value="viewer">Viewer: read only</option>
            <option value="admin">Admin: everything, including users and webhooks</option>
          </select>
          <ErrorNote error={error} />
          <button type="submit">Add user</button>
        </form>
      </Panel>
      <Panel title="People">
        <ListState
          ready={users.data !== undefined}
          error={users.error}
          empty={rows.length === 0 ? <p>No users.</p> : null}
        >
          <ListTable columns={['Email', 'Role', { label: 'Added', className: 'wide' }]}>
            {rows.map((u) => (
              <tr key={u.id}>
                <td>{u.email}</td>
                <td>
                  <span className="badge neutral">{u.role}</span>
                </td>
                <td className="wide">{when(u.created_at)}</td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
    </>
  );
}
