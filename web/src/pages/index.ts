import { route } from '../router.js';
import { deadLettersPage } from './dead-letters.js';
import { destinationFormPage } from './destination-form.js';
import { destinationTablesPage } from './destination-tables.js';
import { destinationTestPage } from './destination-test.js';
import { destinationsPage } from './destinations.js';
import { runPage } from './run.js';
import { runsPage } from './runs.js';
import { schedulesPage } from './schedules.js';
import { signInPage } from './signin.js';
import { webhooksPage } from './webhooks.js';

/** Every page of the console and its address. */
export function registerPages(): void {
  route('/signin', 'Sign in', signInPage);
  route('/destinations', 'Destinations', destinationsPage);
  route('/destinations/new', 'Add a destination', destinationFormPage);
  route('/destinations/:id/edit', 'Destination', destinationFormPage);
  route('/destinations/:id/test', 'Test connection', destinationTestPage);
  route('/destinations/:id/tables', 'Tables', destinationTablesPage);
  route('/runs', 'Runs', runsPage);
  route('/runs/:id', 'Run', runPage);
  route('/schedules', 'Schedules', schedulesPage);
  route('/webhooks', 'Webhooks', webhooksPage);
  route('/dead-letters', 'Dead letters', deadLettersPage);
}
