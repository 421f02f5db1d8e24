import type { FastifyInstance } from 'fastify';

/**
 * otpilot's mark: a rounded square with a keyhole-shaped "o" (the code that opens the login). One
 * SVG serves as the favicon (`/favicon.ico`, `/favicon.svg`) and as the API reference's logo.
 */
export const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" role="img" aria-label="otpilot">
<rect width="32" height="32" rx="7" fill="#2457d6"/>
<circle cx="16" cy="13" r="6.5" fill="none" stroke="#fff" stroke-width="3"/>
<path d="M14.2 18.5h3.6l1.4 7.5h-6.4z" fill="#fff"/>
</svg>`;

/** The wordmark beside the logo in the API reference's top bar. */
export const LOGO_WITH_NAME_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 150 32" role="img" aria-label="otpilot API reference">
<rect width="32" height="32" rx="7" fill="#2457d6"/>
<circle cx="16" cy="13" r="6.5" fill="none" stroke="#fff" stroke-width="3"/>
<path d="M14.2 18.5h3.6l1.4 7.5h-6.4z" fill="#fff"/>
<text x="40" y="23" font-family="system-ui, sans-serif" font-size="20" font-weight="700" fill="#fff">otpilot</text>
</svg>`;

/** `/favicon.ico` and `/favicon.svg` (browsers ask for the first on every page that names none, the widget demo too). */
export async function brandRoutes(app: FastifyInstance): Promise<void> {
  const page = { config: { public: true }, schema: { hide: true } };
  for (const path of ['/favicon.ico', '/favicon.svg']) {
    app.get(path, page, async (_request, reply) =>
      reply.type('image/svg+xml').header('cache-control', 'public, max-age=86400').send(LOGO_SVG),
    );
  }
}
