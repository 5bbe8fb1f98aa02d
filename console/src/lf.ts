// Leaflet, also as the global `L`: leaflet.markercluster (a UMD script)
// extends `L` itself, so this module runs before it is imported.
import L from 'leaflet';

declare global {
  interface Window {
    L: typeof L;
  }
}
window.L = L;
export default L;
