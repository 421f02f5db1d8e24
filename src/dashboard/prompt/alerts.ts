/** How a new prompt gets noticed at 3 a.m.: a tone, a desktop notification, the tab title. */

let context: AudioContext | null = null;

/** Two short tones made on the spot (no asset to load); silent when the browser blocks audio. */
export function playChime(): void {
  try {
    context ??= new AudioContext();
    const ctx = context;
    void ctx.resume();
    [0, 0.18].forEach((offset, i) => {
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.frequency.value = i === 0 ? 880 : 1320;
      gain.gain.setValueAtTime(0.0001, ctx.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, ctx.currentTime + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + offset + 0.16);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(ctx.currentTime + offset);
      oscillator.stop(ctx.currentTime + offset + 0.17);
    });
  } catch {
    // No audio device or autoplay blocked: the notification and the title still tell.
  }
}

export function notificationsSupported(): boolean {
  return typeof Notification !== 'undefined';
}

/** A desktop notification, when the operator allowed them; clicking it brings the tab forward. */
export function notify(title: string, body: string, tag: string): void {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const notification = new Notification(title, { body, tag, requireInteraction: true });
    notification.onclick = () => {
      window.focus();
      notification.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; the title and chime remain.
  }
}

/** `(2) otpilot` while two prompts wait. */
export function setTitleCount(count: number): void {
  document.title = count > 0 ? `(${count}) Code needed · otpilot` : 'otpilot';
}
